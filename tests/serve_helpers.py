"""Real servers on 127.0.0.1 with free ports, and an SSH client that sees a real screen.

A server runs as ``python -m smart_suggest serve ...`` in a subprocess with its own data
and temp folders (so its host key and demo copies are inside ``tmp_path``); its banner is
read from stdout for the port, its log goes to a file. The client side is asyncssh, and
its terminal is pyte (a VT emulator), so tests assert what a visitor would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import asyncssh
import pyte


class Server:
    def __init__(self, tmp: Path, kind: str, args: list[str], ready: str) -> None:
        self.tmp = tmp
        self.data = tmp / "data"
        self.temp = tmp / "temp"
        self.data.mkdir(exist_ok=True)
        self.temp.mkdir(exist_ok=True)
        self.log_path = tmp / f"{kind}.log"
        env = dict(os.environ, XDG_DATA_HOME=str(self.data), TMPDIR=str(self.temp))
        env.pop("SMART_SUGGEST_DB", None)
        self.log_file = open(self.log_path, "w")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smart_suggest", "serve", kind, *args],
            stdout=subprocess.PIPE,
            stderr=self.log_file,
            env=env,
            text=True,
        )
        self.banner = self._read_banner(ready)
        match = re.search(r"listening on [^ ]+:(\d+)", self.banner) or re.search(
            r"http://[^:]+:(\d+)", self.banner
        )
        assert match, self.banner
        self.port = int(match.group(1))

    def _read_banner(self, ready: str, timeout: float = 60) -> str:
        """Lines of stdout up to the one containing ``ready`` (read in a thread: a pipe's
        buffered reader and select() do not mix)."""
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put("")

        threading.Thread(target=read, daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if not line:
                break
            seen.append(line)
            if ready in line:
                return "".join(seen)
        log = self.log()
        self.stop()
        raise AssertionError(f"server did not start: {''.join(seen)}{log}")

    def log(self) -> str:
        if not self.log_file.closed:
            self.log_file.flush()
        return self.log_path.read_text()

    def demo_copies(self) -> list[Path]:
        return sorted(self.temp.glob("smart-suggest-serve-*/visitor-*.db"))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        return int(self.proc.returncode)


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def zygote_pid(server_pid: int) -> int | None:
    """The server's zygote process (serve/zygote.py), if it runs one."""
    for pid in children(server_pid):
        with contextlib.suppress(OSError):
            if b"serve.zygote" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    return None


class Term:
    """One SSH session with a PTY, its output fed into a pyte screen."""

    def __init__(self, proc: Any, cols: int, rows: int) -> None:
        self.proc = proc
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""
        self.closed = False
        self._task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        while True:
            data = await self.proc.stdout.read(65536)
            if not data:
                self.closed = True
                return
            self.raw += data
            self.stream.feed(data)

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def plain(self) -> str:
        """Everything received, escape sequences removed (text that scrolled or closed)."""
        return re.sub(
            rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]", b"", self.raw
        ).decode("utf-8", "replace")

    async def wait_for(self, needle: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return
            if self.closed:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"{needle!r} not on screen after {timeout} s:\n{self.text()}")

    async def wait_until(self, check: Any, what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.closed:
            if check(self.screen):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{what}: not on screen after {timeout} s:\n{self.text()}")

    async def wait_closed(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert self.closed, f"session still open:\n{self.text()}"

    def send(self, keys: str | bytes) -> None:
        self.proc.stdin.write(keys.encode() if isinstance(keys, str) else keys)

    def resize(self, cols: int, rows: int) -> None:
        self.screen.resize(rows, cols)
        self.proc.change_terminal_size(cols, rows)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


async def connect(port: int, **kwargs: Any) -> asyncssh.SSHClientConnection:
    kwargs.setdefault("client_keys", None)
    return await asyncssh.connect(
        "127.0.0.1", port, known_hosts=None, username="demo", agent_path=None, **kwargs
    )


async def open_term(
    conn: asyncssh.SSHClientConnection,
    cols: int = 100,
    rows: int = 30,
    term: str = "xterm-256color",
    env: dict[str, str] | None = None,
) -> Term:
    proc = await conn.create_process(
        term_type=term, term_size=(cols, rows), encoding=None, env=env or {}
    )
    return Term(proc, cols, rows)
