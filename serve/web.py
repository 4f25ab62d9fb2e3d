"""``smart-suggest serve web``: the app in the browser through textual-serve.

textual-serve runs one command per websocket (one app process per visitor) and streams
its screen to xterm.js in the page. Our command is ``serve.web_session``, which makes the
visitor's private demo copy and removes it when the app ends; this server removes copies
whose process died without cleaning up, and the whole folder when it stops.

The limits are those of ``serve ssh`` (serve/common.py): sessions at once, new sessions
per address per minute, idle timeout and longest session, each warned before it strikes.
Warnings and the request to quit reach the app through a FIFO per session (the web
driver owns the app's stdin and stdout), read like the ssh server's control pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serve.common import (
    DIR_PREFIX,
    DemoCopies,
    EventLog,
    RateLimiter,
    ServeError,
    SessionClock,
    _alive,
    is_loopback,
)

#: The environment variable that names a session's control FIFO (read by web_session).
CONTROL_ENV = "SMART_SUGGEST_CONTROL_FIFO"


@dataclass
class WebOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    db: Path | None = None
    read_only: bool = False
    public_url: str | None = None
    open: bool = False
    max_sessions: int = 20
    idle_timeout: float | None = 15 * 60
    max_session: float | None = 2 * 3600
    #: New sessions (websockets) per address per minute.
    rate_limit: int = 10
    #: Seconds of warning before the idle and session limits (at most half the limit).
    warn_before: float = 60.0
    log_json: bool = False


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


@dataclass(eq=False)
class WebSession:
    """One browser tab: its address, its limits, the FIFO that carries notices to its app."""

    address: str
    clock: SessionClock
    fifo: Path
    size: tuple[int, int]
    started: float = field(default_factory=time.monotonic)
    end_reason: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    websocket: Any = None
    _fd: int | None = None

    def send(self, message: dict[str, str]) -> bool:
        """One control message to the app; False if it does not listen (yet)."""
        if self._fd is None:
            try:
                self._fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: the app has not opened its end yet
                return False
        try:
            os.write(self._fd, json.dumps(message).encode() + b"\n")
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        self.fifo.unlink(missing_ok=True)


def make_server(
    options: WebOptions,
    demo: DemoCopies | None,
    log: Callable[..., None] | None = None,
) -> Any:
    from aiohttp import WSCloseCode, WSMsgType, web
    from textual_serve.app_service import AppService
    from textual_serve.server import Server, to_int

    emit: Callable[..., None] = log or EventLog(options.log_json)
    rate = RateLimiter(options.rate_limit)
    sessions: set[WebSession] = set()
    # Named like the demo folders: a server killed outright leaves it to the next one.
    fifos = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-control-"))
    numbers = itertools.count(1)

    class SessionService(AppService):
        """textual-serve's app process, with the session's control FIFO in its environment."""

        def __init__(self, *args: Any, fifo: Path, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.fifo = fifo

        def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
            environment = super()._build_environment(width, height)
            environment[CONTROL_ENV] = str(self.fifo)
            return environment

    class WebServer(Server):
        control_folder = fifos
        live_sessions = sessions

        async def on_startup(self, app: Any) -> None:
            """textual-serve prints its logo here; our banner comes once we listen."""

        async def handle_websocket(self, request: Any) -> Any:
            try:
                return await self._session(request)
            finally:
                if demo is not None:
                    await asyncio.sleep(0.5)  # the app's own cleanup comes first
                    sweep(demo.folder)

        async def _session(self, request: Any) -> Any:
            address = str(request.remote or "?")
            websocket = web.WebSocketResponse(heartbeat=15)
            await websocket.prepare(request)
            refusal = None
            if not rate.allow(address):
                refusal = (
                    "rate-limit",
                    "too many connections from your address; please try again in a minute",
                )
            elif len(sessions) >= options.max_sessions:
                refusal = (
                    "max-sessions",
                    f"all {options.max_sessions} sessions are in use; please try again in a "
                    "few minutes",
                )
            if refusal is not None:
                emit("refused", address=address, reason=refusal[0])
                with contextlib.suppress(Exception):
                    await websocket.send_bytes(f"smart-suggest: {refusal[1]}\r\n".encode())
                    await websocket.close(
                        code=WSCloseCode.TRY_AGAIN_LATER, message=refusal[1][:120].encode()
                    )
                return websocket
            width = to_int(request.query.get("width", "80"), 80)
            height = to_int(request.query.get("height", "24"), 24)
            fifo = fifos / f"control-{next(numbers)}"
            os.mkfifo(fifo, 0o600)
            session = WebSession(
                address,
                SessionClock(options.idle_timeout, options.max_session, options.warn_before),
                fifo,
                (width, height),
            )
            session.websocket = websocket
            sessions.add(session)

            async def write_bytes(data: bytes) -> None:
                session.bytes_out += len(data)
                await websocket.send_bytes(data)

            async def close() -> None:
                # The app ended: its slot is free, and the visitor is told why when the
                # server ended it.
                sessions.discard(session)
                if session.end_reason is not None:
                    with contextlib.suppress(Exception):
                        await websocket.send_bytes(
                            f"\r\nsmart-suggest: session closed: {session.end_reason}\r\n".encode()
                        )
                await websocket.close()

            service = SessionService(
                self.command,
                write_bytes=write_bytes,
                write_str=websocket.send_str,
                close=close,
                download_manager=self.download_manager,
                debug=self.debug,
                fifo=fifo,
            )
            emit("connect", address=address, size=f"{width}x{height}", sessions=len(sessions))
            watch = None
            try:
                await service.start(width, height)
                watch = asyncio.create_task(self._watch(session, service, websocket))
                await self._messages(websocket, service, session)
            except asyncio.CancelledError:
                await websocket.close()
            finally:
                if watch is not None:
                    watch.cancel()
                with contextlib.suppress(Exception):
                    await service.stop()
                sessions.discard(session)
                session.close()
                emit(
                    "disconnect",
                    address=address,
                    size=f"{session.size[0]}x{session.size[1]}",
                    duration=f"{time.monotonic() - session.started:.1f}s",
                    bytes_in=session.bytes_in,
                    bytes_out=session.bytes_out,
                    reason=session.end_reason or "client left",
                )
            return websocket

        async def _messages(self, websocket: Any, service: Any, session: WebSession) -> None:
            """textual-serve's loop over the browser's messages, with a key press noted."""
            async for message in websocket:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    envelope = message.json()
                    kind, data = envelope[0], envelope[1]
                except (ValueError, TypeError, IndexError, KeyError):
                    continue
                if kind == "stdin" and isinstance(data, str):
                    session.clock.key_pressed()
                    session.bytes_in += len(data)
                    await service.send_bytes(data.encode("utf-8"))
                elif kind == "resize" and isinstance(data, dict):
                    size = (to_int(str(data.get("width")), 80), to_int(str(data.get("height")), 24))
                    session.size = size
                    await service.set_terminal_size(*size)
                elif kind == "ping":
                    await websocket.send_json(["pong", data])
                elif kind == "blur":
                    await service.blur()
                elif kind == "focus":
                    await service.focus()

        async def _watch(self, session: WebSession, service: Any, websocket: Any) -> None:
            """The session's limits: a notice in the app before, then the app is stopped."""
            while True:
                await asyncio.sleep(0.5)
                action = session.clock.check(time.monotonic())
                if action is None:
                    continue
                what, text, lead = action
                if what == "warn":
                    session.send({"notify": text, "severity": "warning", "timeout": str(lead)})
                    continue
                session.end_reason = text
                emit("limit", address=session.address, reason=text)
                # The app quits (its exit closes the websocket, with the reason above);
                # textual-serve's own quit request if it does not listen.
                if not session.send({"quit": text}):
                    await service.stop()
                await asyncio.sleep(5)
                await websocket.close()
                return

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
    # Sessions are closed before the runner stops (below): a short grace for the rest.
    runner = web.AppRunner(await server._make_app(), handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        shutil.rmtree(server.control_folder, ignore_errors=True)
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
        # Visitors are told (a notification in their app), as over SSH; then closing the
        # websockets makes textual-serve ask each app to quit (and wait for it).
        live = list(server.live_sessions)
        for session in live:
            session.end_reason = session.end_reason or "the server is shutting down"
            session.send(
                {
                    "notify": "The server is shutting down: this session closes now.",
                    "severity": "error",
                    "timeout": "10",
                }
            )
        if live:
            await asyncio.sleep(1.0)
            for session in live:
                session.send({"quit": "the server is shutting down"})
            deadline = time.monotonic() + 5
            while server.live_sessions and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            for session in list(server.live_sessions):  # an app that did not listen
                if session.websocket is not None:
                    with contextlib.suppress(Exception):
                        await session.websocket.close()
        await runner.cleanup()
        shutil.rmtree(server.control_folder, ignore_errors=True)
    return 0
