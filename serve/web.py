"""``smart-suggest serve web``: the app in the browser through textual-serve.

textual-serve runs one command per websocket (one app process per visitor) and streams
its screen to xterm.js in the page. Our command is ``serve.web_session``, which makes the
visitor's private demo copy and removes it when the app ends; this server removes copies
whose process died without cleaning up, and the whole folder when it stops.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serve.common import DemoCopies, ServeError, _alive, is_loopback


@dataclass
class WebOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    db: Path | None = None
    read_only: bool = False
    public_url: str | None = None
    open: bool = False


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def sweep(folder: Path) -> None:
    """Remove the copies of visitors whose app process is gone (killed, not closed)."""
    for path in folder.glob("visitor-*.db*"):
        match = re.match(r"visitor-(\d+)\.db", path.name)
        if match and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)


def make_server(options: WebOptions, demo: DemoCopies | None) -> Any:
    from textual_serve.server import Server

    class WebServer(Server):
        async def on_startup(self, app: Any) -> None:
            """textual-serve prints its logo here; our banner comes once we listen."""

        async def handle_websocket(self, request: Any) -> Any:
            try:
                return await super().handle_websocket(request)
            finally:
                if demo is not None:
                    await asyncio.sleep(0.5)  # the app's own cleanup comes first
                    sweep(demo.folder)

    command = [sys.executable, "-m", "serve.web_session"]
    if demo is not None:
        command += ["--folder", str(demo.folder)]
    else:
        assert options.db is not None
        command += ["--db", str(options.db.absolute())]
    if options.read_only:
        command.append("--read-only")
    return WebServer(
        shlex.join(command),
        host=options.host,
        port=options.port,
        title="smart-suggest",
        public_url=options.public_url,
    )


def banner(options: WebOptions, url: str, demo: DemoCopies | None) -> str:
    what = "a private copy of the demo data per visitor" if demo else f"database {options.db}"
    if options.read_only:
        what += ", read-only"
    reach = "loopback only" if is_loopback(options.host) else "OPEN: anyone who can reach it"
    return "\n".join(
        [
            f"smart-suggest serve web: listening on {url} ({reach})",
            f"serving: {what}",
            f"open: {url}",
            "stop: ctrl+c or SIGTERM",
        ]
    )


def run_web(options: WebOptions) -> int:
    if not is_loopback(options.host) and not options.open:
        raise ServeError(
            f"--host {options.host}: the web server has no login; listening beyond this "
            "machine needs an explicit --open (or a proxy with authentication in front)"
        )
    if options.db is not None:
        from smart_suggest.store import open_store

        open_store(options.db, read_only=options.read_only).close()
    if options.port == 0:
        options.port = free_port(options.host)
    demo = None
    if options.db is None:
        demo = DemoCopies()
        demo.make_template()
    os.environ.pop("SMART_SUGGEST_DB", None)
    try:
        return asyncio.run(_serve(options, demo))
    finally:
        if demo is not None:
            demo.close()


async def _serve(options: WebOptions, demo: DemoCopies | None) -> int:
    """Listen, print the banner, serve until SIGTERM / ctrl+c, then stop every visitor's app.

    Our own loop around textual-serve's aiohttp application (its ``serve()`` prints the
    banner before the socket is bound and cannot tell us the port).
    """
    from aiohttp import web

    server = make_server(options, demo)
    runner = web.AppRunner(await server._make_app(), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ServeError(
            f"cannot listen on {options.host}:{options.port} ({exc.strerror})"
        ) from None
    print(banner(options, server.public_url, demo), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        # Closing the websockets makes textual-serve ask each app to quit (and wait for it).
        await runner.cleanup()
    return 0
