"""What the app knows when a server runs it for a visitor (``smart-suggest serve ssh|web``).

The server starts one app process per visitor and describes the session in one
environment variable, ``SMART_SUGGEST_SERVED``, a JSON object::

    {"via": "ssh" | "web", "demo": true, "control_fd": 3}

``control_fd`` (ssh only) is the read end of a pipe on which the server sends one JSON
object per line, ``{"notify": TEXT, "severity": "warning"}``: the idle warning, the
session's time limit, the server shutting down. The app shows them as notifications, so
the server never writes into the middle of the app's screen.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

ENV_VAR = "SMART_SUGGEST_SERVED"


@dataclass(frozen=True)
class Served:
    """A served session: how the visitor reached us and what they got."""

    via: str
    demo: bool = False
    control_fd: int | None = None

    @classmethod
    def from_env(cls) -> Served | None:
        raw = os.environ.get(ENV_VAR)
        if not raw:
            return None
        try:
            data = json.loads(raw)
            via = str(data.get("via", "ssh"))
            fd = data.get("control_fd")
            return cls(via=via, demo=bool(data.get("demo")), control_fd=int(fd) if fd else None)
        except (ValueError, TypeError, AttributeError):
            return cls(via="ssh")

    def to_env(self) -> str:
        return json.dumps({"via": self.via, "demo": self.demo, "control_fd": self.control_fd})

    @property
    def how_to_leave(self) -> str:
        closing = "closing the terminal" if self.via == "ssh" else "closing the browser tab"
        return f"Leave this session ({closing} works too; only your session ends)"


def adopt_terminal(fd: int = 0) -> None:
    """Make the terminal on ``fd`` this process's controlling terminal (ssh sessions).

    The server starts the app in a new session on a PTY it owns; as the controlling
    terminal, the PTY hangs the app up (SIGHUP) when the server closes it, so an app can
    never outlive its visitor's session, whatever happened to the server.
    """
    import contextlib
    import fcntl
    import termios

    # Not a session leader, or it has a terminal already: nothing to adopt.
    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, termios.TIOCSCTTY, 0)


class ControlReader:
    """Reads the server's control pipe line by line (called from the event loop)."""

    def __init__(self, fd: int, on_message: Callable[[dict[str, str]], None]) -> None:
        self.fd = fd
        self.on_message = on_message
        self._buffer = b""
        os.set_blocking(fd, False)

    def readable(self) -> None:
        try:
            chunk = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            import asyncio

            asyncio.get_running_loop().remove_reader(self.fd)
            return
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                self.on_message({str(k): str(v) for k, v in message.items()})
