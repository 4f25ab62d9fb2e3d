"""What both servers share: demo copies per visitor, durations, addresses, the app command."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smart_suggest.errors import InputError

DIR_PREFIX = "smart-suggest-serve-"


class ServeError(InputError):
    """A server option that cannot work (exit 2, one line)."""


def parse_duration(text: str, option: str) -> float | None:
    """``90s``, ``15m``, ``2h``, ``1h30m`` or plain seconds; ``0``/``off``/``none`` = no limit."""
    raw = text.strip().lower()
    if raw in ("0", "off", "none", "never"):
        return None
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        seconds = float(raw)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", raw)
        if not parts or "".join(n + u for n, u in parts) != raw:
            raise ServeError(f"{option}: {text!r} is not a duration (e.g. 90s, 15m, 2h, 0 = off)")
        scale = {"h": 3600.0, "m": 60.0, "s": 1.0}
        seconds = sum(float(n) * scale[u] for n, u in parts)
    if seconds <= 0:
        return None
    return seconds


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


class EventLog:
    """One line per event on stderr: text for people, JSON lines with ``--log-json``."""

    def __init__(self, as_json: bool, stream: Any = None) -> None:
        self.as_json = as_json
        self.stream = stream if stream is not None else sys.stderr

    def __call__(self, event: str, **fields: Any) -> None:
        now = time.time()
        stamp = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        )
        # Fields carry what clients sent (a command, a terminal type): never raw control
        # characters in a log that someone will read on a terminal.
        from smart_suggest import termsafe

        if self.as_json:
            line = termsafe.json_dumps({"time": stamp, "event": event, **fields})
        else:
            parts = [stamp, event] + [f"{k}={v}" for k, v in fields.items() if v is not None]
            line = termsafe.escape(" ".join(str(p) for p in parts))
        self.stream.write(line + "\n")
        self.stream.flush()


class RateLimiter:
    """New sessions per address per minute (both servers)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._recent: dict[str, deque[float]] = {}

    def allow(self, address: str) -> bool:
        now = time.monotonic()
        recent = self._recent.setdefault(address, deque())
        while recent and now - recent[0] > 60:
            recent.popleft()
        if len(recent) >= self.per_minute:
            return False
        recent.append(now)
        if len(self._recent) > 10_000:  # forget quiet addresses
            for addr in [a for a, d in self._recent.items() if not d]:
                del self._recent[addr]
        return True


def human(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


@dataclass
class SessionClock:
    """The idle and session-length limits of one visitor's session (both servers).

    ``check()`` says what to do now: nothing, warn the visitor (once per limit, ``lead``
    seconds before it strikes: ``warn_before``, at most half the limit), or end the session.
    A key press resets the idle limit and its warning.
    """

    idle_timeout: float | None
    max_session: float | None
    warn_before: float = 60.0
    started: float = field(default_factory=time.monotonic)
    last_input: float = field(default_factory=time.monotonic)
    warned: set[str] = field(default_factory=set)

    def key_pressed(self) -> None:
        self.last_input = time.monotonic()
        self.warned.discard("idle")

    def check(self, now: float) -> tuple[str, str, float] | None:
        """``("warn", text, seconds the notice stays)``, ``("end", reason, 0)`` or None."""
        for name, limit, since, what in (
            ("idle", self.idle_timeout, self.last_input, "without a key press"),
            ("max", self.max_session, self.started, "(the longest a session may last)"),
        ):
            if limit is None:
                continue
            elapsed = now - since
            lead = min(self.warn_before, limit / 2)
            if elapsed >= limit:
                return ("end", f"{human(limit)} {what}", 0.0)
            if elapsed >= limit - lead and name not in self.warned:
                self.warned.add(name)
                left = human(limit - elapsed)
                if name == "idle":
                    text = (
                        f"No key pressed for a while: this session closes in {left} "
                        "unless you press a key."
                    )
                else:
                    text = f"This session reaches its time limit and closes in {left}."
                return ("warn", text, lead)
        return None


def app_command(db: Path, *, read_only: bool) -> list[str]:
    """The command that runs the app for one visitor (this Python, this smart-suggest)."""
    cmd = [sys.executable, "-m", "smart_suggest", "tui", "--db", str(db)]
    if read_only:
        cmd.append("--read-only")
    return cmd


#: The operator's session: never in a visitor's app (``SSH_*`` neither).
PRIVATE_ENV = ("DISPLAY", "XAUTHORITY", "WAYLAND_DISPLAY", "GPG_AGENT_INFO")


def app_env(
    served_json: str, extra: dict[str, str] | None = None, drop: tuple[str, ...] = ()
) -> dict[str, str]:
    """The visitor's app environment: ours, less what would pick another database or
    size, less the server operator's own SSH agent and X display (a visitor must never
    reach them, not even through a bug in the app), and less ``drop``."""
    skip = ("SMART_SUGGEST_DB", "COLUMNS", "LINES", *PRIVATE_ENV, *drop)
    env = {k: v for k, v in os.environ.items() if k not in skip and not k.startswith("SSH_")}
    env["SMART_SUGGEST_SERVED"] = served_json
    env.update(extra or {})
    return env


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DemoCopies:
    """Private copies of the demo database, one per visitor, in one folder per server.

    The demo is seeded once, into a template, when the server starts; a visitor's copy is a
    file copy of it (no re-seeding), removed with its ``-wal``/``-shm`` when they leave, and
    the whole folder goes when the server stops. Folders left by a server that was killed
    are removed by the next server that starts.
    """

    def __init__(self, root: Path | None = None) -> None:
        base = Path(root) if root is not None else Path(tempfile.gettempdir())
        _remove_stale(base)
        self.folder = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-", dir=base))
        self.template = self.folder / "template.db"
        self._n = 0
        self._lock = threading.Lock()
        self.live: set[Path] = set()

    def make_template(self) -> float:
        """Seed the template; returns the seconds it took."""
        from smart_suggest.sample import load_demo
        from smart_suggest.store import open_store

        started = time.perf_counter()
        with open_store(self.template) as store:
            load_demo(store, seed=42)
            # Everything into the main file: a copy of the template is then one file.
            store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for suffix in ("-wal", "-shm"):
            Path(f"{self.template}{suffix}").unlink(missing_ok=True)
        return time.perf_counter() - started

    def new_copy(self) -> Path:
        with self._lock:
            self._n += 1
            path = self.folder / f"visitor-{self._n}.db"
        shutil.copyfile(self.template, path)
        self.live.add(path)
        return path

    def remove(self, path: Path) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        self.live.discard(path)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.live.clear()


def _remove_stale(base: Path) -> None:
    try:
        entries = list(base.glob(f"{DIR_PREFIX}*"))
    except OSError:
        return
    for entry in entries:
        match = re.match(rf"{DIR_PREFIX}(\d+)-", entry.name)
        if match and entry.is_dir() and not _alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
