"""``smart-suggest serve ssh``: the app over SSH, one app process per visitor, on asyncssh.

Each SSH session that asks for a PTY gets its own ``smart-suggest tui`` process on a fresh
PTY pair; this server copies bytes between the PTY and the SSH channel. A process per
session isolates visitors completely (a crash, a slow analysis or a stuck worker in one
app cannot touch another; Textual runs one app per event loop and binds it to one
terminal), and its memory goes back to the system when the visitor leaves. Measured in
``benchmarks/bench_serve.py`` (see the README).

Nothing but the app is served: a shell or exec request without a PTY, an exec of any
command, subsystems (SFTP), port forwarding and agent forwarding are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import socket
import struct
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from serve.common import (
    DemoCopies,
    EventLog,
    RateLimiter,
    ServeError,
    SessionClock,
    app_command,
    app_env,
    is_loopback,
)
from serve.zygote import UNKNOWN_STATUS, ForkedApp, Zygote, ZygoteError

#: The channel's write buffer: above HIGH the PTY is no longer read (the app then blocks on
#: its own output), below LOW reading resumes. A slow client cannot grow our memory.
WRITE_HIGH = 256 * 1024
WRITE_LOW = 64 * 1024
#: Input waiting for the app (a client pasting faster than the app reads) is bounded too.
INPUT_HIGH = 64 * 1024
#: How long an app gets to exit by itself (restoring the visitor's terminal) when asked.
QUIT_GRACE = 3.0
#: Restores a terminal an app left in full-screen mode (alternate screen, mouse, cursor).
TERMINAL_RESET = b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?2004l\x1b[?25h\x1b[?1049l"
REFUSE_NO_PTY = (
    "smart-suggest: this server runs only the smart-suggest app, in a terminal: "
    "connect without a command and with a terminal (ssh -t)"
)


@dataclass
class SshOptions:
    host: str = "127.0.0.1"
    port: int = 2222
    db: Path | None = None
    demo: bool = True
    read_only: bool = False
    max_sessions: int = 20
    idle_timeout: float | None = 15 * 60
    max_session: float | None = 2 * 3600
    authorized_keys: Path | None = None
    open: bool = False
    log_json: bool = False
    host_key: Path | None = None
    #: New connections per address per minute.
    rate_limit: int = 10
    #: Seconds of warning before the idle and session limits (at most half the limit).
    warn_before: float = 60.0
    #: Seconds visitors get to read the shutdown notice before their session closes.
    shutdown_notice: float = 1.0
    #: Fork each visitor's app from a process that has imported it already (serve/zygote.py)
    #: instead of starting a new interpreter.
    zygote: bool = True


def default_host_key_path() -> Path:
    import platformdirs

    return platformdirs.user_data_path("smart-suggest") / "ssh_host_ed25519_key"


def load_host_key(path: Path) -> tuple[asyncssh.SSHKey, bool]:
    """The server's ed25519 key: generated (mode 0600) on first start, then reused."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ServeError(
                f"{path}: the host key is readable by others (mode {mode:o}); chmod 600 it"
            )
        try:
            return asyncssh.read_private_key(str(path)), False
        except (OSError, asyncssh.KeyImportError) as exc:
            raise ServeError(f"{path}: cannot read the host key ({exc})") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = asyncssh.generate_private_key("ssh-ed25519", comment="smart-suggest serve ssh")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.export_private_key())
    except OSError as exc:
        raise ServeError(f"{path}: cannot create the host key ({exc.strerror})") from None
    return key, True


def load_authorized_keys(path: Path) -> dict[bytes, str]:
    """Public keys from an authorized_keys file: key blob -> SHA256 fingerprint."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ServeError(f"{path}: cannot read the authorized keys ({exc})") from None
    keys: dict[bytes, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        # Options may precede the key type ("from=... ssh-ed25519 AAAA..."): find the key.
        words = line.split()
        for start in range(len(words) - 1):
            try:
                key = asyncssh.import_public_key(" ".join(words[start : start + 2]))
            except (asyncssh.KeyImportError, ValueError):
                continue
            keys[key.public_data] = key.get_fingerprint()
            break
        else:
            raise ServeError(f"{path}: line {number} is not a public key")
    if not keys:
        raise ServeError(f"{path}: no public keys in the file")
    return keys


@dataclass
class Visitor:
    """What the log says about one connection."""

    address: str
    port: int
    key: str = "open"
    started: float = field(default_factory=time.monotonic)


class AppSession(asyncssh.SSHServerSession[bytes]):
    """One SSH session: a PTY pair, the app process on it, and the bytes in between."""

    def __init__(self, server: SshServer, visitor: Visitor) -> None:
        self.server = server
        self.visitor = visitor
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.term: str | None = None
        self.size = (80, 24)
        self.has_pty = False
        self.refusal: str | None = None
        self.proc: asyncio.subprocess.Process | ForkedApp | None = None
        self.master: int | None = None
        self.control: int | None = None
        self.db_copy: Path | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.started = time.monotonic()
        options = server.options
        self.clock = SessionClock(
            options.idle_timeout, options.max_session, options.warn_before, self.started
        )
        self.end_reason: str | None = None
        self.reading = False
        self.pending = b""
        self.task: asyncio.Task[None] | None = None
        self.counted = False
        self.client_gone = False

    # -- asyncssh callbacks --------------------------------------------------------------
    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self.chan = chan
        chan.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)

    def pty_requested(
        self, term_type: str, term_size: tuple[int, int, int, int], term_modes: Any
    ) -> bool:
        self.has_pty = True
        self.term = term_type or None
        if term_size[0] > 0 and term_size[1] > 0:
            self.size = (term_size[0], term_size[1])
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        # Accepted only to say why nothing runs (a refused request shows no message).
        self.refusal = "smart-suggest: commands cannot be run here; this server runs only the app"
        self.server.log("refused", **self._who(), reason="exec", command=command[:80])
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        self.server.log("refused", **self._who(), reason="subsystem", subsystem=subsystem[:40])
        return False

    def session_started(self) -> None:
        assert self.chan is not None
        if self.refusal is None and not self.has_pty:
            self.refusal = REFUSE_NO_PTY
            self.server.log("refused", **self._who(), reason="no-pty")
        if self.refusal is not None:
            self._say_and_exit(self.refusal, 1)
            return
        if not self.server.take_slot(self):
            limit = self.server.options.max_sessions
            self.server.log("refused", **self._who(), reason="max-sessions", limit=limit)
            self._say_and_exit(
                f"smart-suggest: all {limit} sessions are in use; please try again in a few "
                "minutes",
                1,
            )
            return
        self.counted = True
        self.task = asyncio.ensure_future(self._run())

    def data_received(self, data: bytes, datatype: Any) -> None:
        self.bytes_in += len(data)
        self.clock.key_pressed()
        if self.master is None:
            return
        self.pending += data
        self._flush_input()

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        if width <= 0 or height <= 0:
            return
        self.size = (width, height)
        if self.master is not None:
            self._set_size()
            if self.proc is not None and self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGWINCH)

    def eof_received(self) -> bool:
        return False

    def pause_writing(self) -> None:
        self._stop_reading()

    def resume_writing(self) -> None:
        self._start_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client_gone = True
        self._stop_reading()
        if self.task is not None and not self.task.done() and self.end_reason is None:
            self.end_reason = "client left"
            self._kill_app()

    # -- the app ------------------------------------------------------------------------
    def _who(self) -> dict[str, Any]:
        return {"address": self.visitor.address, "port": self.visitor.port, "key": self.visitor.key}

    def _say_and_exit(self, message: str, status: int) -> None:
        assert self.chan is not None
        with contextlib.suppress(OSError, asyncssh.Error):
            # On a PTY the terminal shows stdout; without one, stderr is the place for it.
            if self.has_pty:
                self.chan.write((message + "\r\n").encode())
            else:
                self.chan.write_stderr((message + "\r\n").encode())
            self.chan.exit(status)

    def _set_size(self) -> None:
        assert self.master is not None
        cols, rows = self.size
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def _run(self) -> None:
        server = self.server
        options = server.options
        slave = control_read = -1
        status = 0
        try:
            copy_ms = None
            if server.demo is not None:
                began = time.perf_counter()
                self.db_copy = await asyncio.to_thread(server.demo.new_copy)
                copy_ms = round((time.perf_counter() - began) * 1000, 1)
                db = self.db_copy
            else:
                assert options.db is not None
                db = options.db
            self.master, slave = os.openpty()
            self._set_size()
            os.set_blocking(self.master, False)
            control_read, self.control = os.pipe()
            os.set_blocking(self.control, False)
            served = json.dumps(
                {"via": "ssh", "demo": server.demo is not None, "control_fd": control_read}
            )
            client_env = self.chan.get_environment() if self.chan is not None else {}
            # Colours follow the visitor's terminal, never the server's own environment.
            extra = {"TERM": self.term or "xterm-256color"}
            for name in ("COLORTERM", "NO_COLOR"):
                if name in client_env:
                    extra[name] = str(client_env[name])
            env = app_env(served, extra, drop=("COLORTERM", "NO_COLOR", "TEXTUAL_COLOR_SYSTEM"))
            zygote = server.zygote
            if zygote is not None and zygote.alive:
                try:
                    self.proc = await zygote.spawn(
                        str(db),
                        read_only=options.read_only,
                        env=env,
                        served={"via": "ssh", "demo": server.demo is not None},
                        tty=slave,
                        control=control_read,
                    )
                except ZygoteError as exc:  # start this one the ordinary way
                    server.log("error", **self._who(), error=f"zygote: {exc}")
            if self.proc is None:
                self.proc = await asyncio.create_subprocess_exec(
                    *(server.command or app_command)(db, read_only=options.read_only),
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    env=env,
                    start_new_session=True,
                    pass_fds=(control_read,),
                )
            os.close(slave)
            os.close(control_read)
            slave = control_read = -1
            if self.client_gone:  # left while the app was starting
                self._kill_app()
            elif self.end_reason is not None:  # the server began stopping meanwhile
                self._control({"quit": self.end_reason})
                asyncio.get_running_loop().call_later(QUIT_GRACE, self._kill_app)
            server.log(
                "connect",
                **self._who(),
                term=self.term,
                size=f"{self.size[0]}x{self.size[1]}",
                sessions=f"{len(server.sessions)}/{options.max_sessions}",
                copy_ms=copy_ms,
                pid=self.proc.pid,
            )
            self._start_reading()
            status = await self.proc.wait()
            await self._drain()
        except Exception as exc:  # a failure to start: tell the visitor, keep serving others
            server.log("error", **self._who(), error=f"{type(exc).__name__}: {exc}")
            self.end_reason = self.end_reason or "server error"
            status = 1
        finally:
            for fd in (slave, control_read):
                if fd >= 0:
                    os.close(fd)
            self._close_session(status)

    async def _drain(self) -> None:
        """Forward what the app wrote before it exited (its terminal restore, for one)."""
        if self.master is None or self.client_gone:
            return
        for _ in range(100):
            try:
                data = os.read(self.master, 65536)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            self._forward(data)

    def _close_session(self, status: int) -> None:
        self._stop_reading()
        for fd in (self.master, self.control):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self.control = None
        if self.db_copy is not None and self.server.demo is not None:
            self.server.demo.remove(self.db_copy)
            self.db_copy = None
        if status == 0:
            ended = "quit"
        elif status == UNKNOWN_STATUS:
            ended = "app ended"
        else:
            ended = f"app exited ({status})"
        reason = self.end_reason or ended
        if self.chan is not None and not self.client_gone:
            if self.end_reason is not None:
                with contextlib.suppress(OSError, asyncssh.Error):
                    self.chan.write(f"\r\nsmart-suggest: session closed: {reason}\r\n".encode())
            with contextlib.suppress(OSError, asyncssh.Error):
                self.chan.exit(0 if status == 0 or self.end_reason else 1)
        self.server.release_slot(self)
        self.server.log(
            "disconnect",
            **self._who(),
            size=f"{self.size[0]}x{self.size[1]}",
            duration=f"{time.monotonic() - self.started:.1f}s",
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            reason=reason,
        )

    def _start_reading(self) -> None:
        if self.master is not None and not self.reading and not self.client_gone:
            asyncio.get_running_loop().add_reader(self.master, self._pty_readable)
            self.reading = True

    def _stop_reading(self) -> None:
        if self.reading and self.master is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.master)
        self.reading = False

    def _pty_readable(self) -> None:
        assert self.master is not None
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the app closed the terminal (it is exiting)
            self._stop_reading()
            return
        if not data:
            self._stop_reading()
            return
        self._forward(data)

    def _forward(self, data: bytes) -> None:
        if self.chan is None or self.client_gone:
            return
        self.bytes_out += len(data)
        try:
            self.chan.write(data)
        except (OSError, asyncssh.Error):
            self.client_gone = True
            return
        if self.chan.get_write_buffer_size() > WRITE_HIGH:
            self._stop_reading()  # resume_writing() starts it again

    def _flush_input(self) -> None:
        assert self.master is not None
        loop = asyncio.get_running_loop()
        while self.pending:
            try:
                written = os.write(self.master, self.pending)
            except BlockingIOError:
                break
            except OSError:
                self.pending = b""
                return
            self.pending = self.pending[written:]
        with contextlib.suppress(Exception):
            loop.remove_writer(self.master)
        if self.pending:
            loop.add_writer(self.master, self._flush_input)
        if self.chan is not None:
            if len(self.pending) > INPUT_HIGH:
                self.chan.pause_reading()
            else:
                self.chan.resume_reading()

    def tell(self, text: str, severity: str = "warning", timeout: float = 30) -> None:
        """A notification in the visitor's app (through the control pipe)."""
        self._control({"notify": text, "severity": severity, "timeout": str(timeout)})

    def _control(self, message: dict[str, str]) -> None:
        if self.control is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.control, json.dumps(message).encode() + b"\n")

    def end(self, reason: str) -> None:
        """Close this session: the app is asked to quit (restoring the visitor's terminal)."""
        if self.end_reason is not None:
            return
        self.end_reason = reason
        if self.proc is None:
            return  # still starting: _run asks the app to quit as soon as it runs
        self._control({"quit": reason})
        asyncio.get_running_loop().call_later(QUIT_GRACE, self._kill_app)

    def _kill_app(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL if self.client_gone else signal.SIGTERM)
        if not self.client_gone and self.chan is not None:
            with contextlib.suppress(OSError, asyncssh.Error):
                self.chan.write(TERMINAL_RESET)
        asyncio.get_running_loop().call_later(1.0, self._kill_hard)

    def _kill_hard(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def check_limits(self, now: float) -> None:
        """Idle and session-length limits, each with a warning before it strikes."""
        if self.end_reason is not None or self.proc is None:
            return
        action = self.clock.check(now)
        if action is None:
            return
        what, text, lead = action
        if what == "end":
            self.end(text)
        else:
            self.tell(text, timeout=lead)


class _Connection(asyncssh.SSHServer):
    """One SSH connection: rate limit, authentication, and what may be opened on it."""

    def __init__(self, server: SshServer) -> None:
        self.server = server
        self.visitor = Visitor("?", 0)
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername") or ("?", 0)
        self.visitor = Visitor(str(peer[0]), int(peer[1]))
        if not self.server.allow_address(self.visitor.address):
            self.server.log(
                "refused", address=self.visitor.address, port=self.visitor.port, reason="rate-limit"
            )
            asyncio.get_running_loop().call_soon(
                conn.disconnect,
                asyncssh.DISC_TOO_MANY_CONNECTIONS,
                "too many connections from your address; please try again in a minute",
            )

    def begin_auth(self, username: str) -> bool:
        return self.server.authorized is not None  # False: no authentication (open)

    def public_key_auth_supported(self) -> bool:
        return self.server.authorized is not None

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        allowed = self.server.authorized or {}
        fingerprint = allowed.get(key.public_data)
        if fingerprint is None:
            self.server.log(
                "refused",
                address=self.visitor.address,
                port=self.visitor.port,
                key=key.get_fingerprint(),
                reason="key-not-authorized",
            )
            return False
        self.visitor.key = fingerprint
        return True

    def session_requested(self) -> AppSession:
        return AppSession(self.server, self.visitor)

    def connection_requested(self, *args: Any) -> bool:
        self._refuse_forward("port forwarding")
        return False

    def server_requested(self, *args: Any) -> bool:
        self._refuse_forward("remote port forwarding")
        return False

    def unix_connection_requested(self, *args: Any) -> bool:
        self._refuse_forward("socket forwarding")
        return False

    def unix_server_requested(self, *args: Any) -> bool:
        self._refuse_forward("remote socket forwarding")
        return False

    def _refuse_forward(self, what: str) -> None:
        self.server.log(
            "refused",
            address=self.visitor.address,
            port=self.visitor.port,
            key=self.visitor.key,
            reason=what.replace(" ", "-"),
        )
        raise asyncssh.ChannelOpenError(
            asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
            f"{what} is not available: this server runs only the smart-suggest app",
        )


class SshServer:
    """The server: options, listening socket, live sessions, demo copies, shutdown."""

    def __init__(
        self,
        options: SshOptions,
        log: Callable[..., None] | None = None,
        command: Callable[..., list[str]] | None = None,
    ) -> None:
        self.options = options
        #: ``command(db, read_only=...)``: what runs on each visitor's PTY instead of the
        #: app forked by the zygote (tests of the byte pipe give it a program that writes as
        #: fast as it can).
        self.command = command
        self.zygote: Zygote | None = None
        self._zygote_task: asyncio.Task[None] | None = None
        self.log = log or EventLog(options.log_json)
        self.sessions: set[AppSession] = set()
        self.demo: DemoCopies | None = None
        self.authorized: dict[bytes, str] | None = None
        self.rate = RateLimiter(options.rate_limit)
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self.port = options.port
        self.stopping = asyncio.Event()

    # -- checks before listening ----------------------------------------------------------
    def check(self) -> None:
        o = self.options
        if not is_loopback(o.host) and o.authorized_keys is None and not o.open:
            raise ServeError(
                f"--host {o.host}: listening beyond this machine needs --authorized-keys FILE "
                "(public-key login) or --open (anyone may connect)"
            )
        if o.max_sessions < 1:
            raise ServeError("--max-sessions must be at least 1")
        if o.db is not None:
            from smart_suggest.store import open_store

            # Validate now (one line and exit 2 for a wrong file), not in every visitor's app.
            open_store(o.db, read_only=o.read_only).close()

    # -- slots and rate limit --------------------------------------------------------------
    def take_slot(self, session: AppSession) -> bool:
        if self.stopping.is_set() or len(self.sessions) >= self.options.max_sessions:
            return False
        self.sessions.add(session)
        return True

    def release_slot(self, session: AppSession) -> None:
        self.sessions.discard(session)

    def allow_address(self, address: str) -> bool:
        return self.rate.allow(address)

    # -- running ----------------------------------------------------------------------------
    async def start(self, out: Any = None) -> None:
        out = out if out is not None else sys.stdout
        o = self.options
        self.check()
        key_path = o.host_key or default_host_key_path()
        key, created = load_host_key(key_path)
        if o.authorized_keys is not None:
            self.authorized = load_authorized_keys(o.authorized_keys)
        if o.zygote and self.command is None:
            await self._start_zygote()
        if o.db is None:
            self.demo = DemoCopies()
            await asyncio.to_thread(self.demo.make_template)
        if self.zygote is not None and not await self.zygote.wait_ready(120):
            self.log("error", error="zygote: not ready; apps start the ordinary way")
        try:
            self._acceptor = await asyncssh.create_server(
                lambda: _Connection(self),
                o.host,
                o.port,
                server_host_keys=[key],
                agent_forwarding=False,
                x11_forwarding=False,
                allow_scp=False,
                line_editor=False,
                encoding=None,
                server_version="smart-suggest",
                login_timeout=60,
                keepalive_interval=30,
                keepalive_count_max=4,
            )
        except OSError as exc:
            if self.demo is not None:
                self.demo.close()
            if self.zygote is not None:
                await self.zygote.close()
            raise ServeError(f"cannot listen on {o.host}:{o.port} ({exc.strerror})") from None
        sockets = self._acceptor.sockets
        self.port = sockets[0].getsockname()[1] if sockets else o.port
        host = (
            o.host
            if is_loopback(o.host) or o.host not in ("0.0.0.0", "::")
            else socket.gethostname()
        )
        target = f"[{host}]" if ":" in host else host
        what = "a private copy of the demo data per visitor" if self.demo else f"database {o.db}"
        if o.read_only:
            what += ", read-only"
        if self.authorized is not None:
            auth = f"public-key login: {len(self.authorized)} key(s) from {o.authorized_keys}"
        elif o.open:
            auth = "OPEN: anyone who can reach this address may connect (no login)"
        else:
            auth = "loopback only: anyone on this machine may connect (no login)"
        lines = [
            f"smart-suggest serve ssh: listening on {o.host}:{self.port} ({auth})",
            f"serving: {what}; up to {o.max_sessions} sessions",
            f"host key: {key.get_fingerprint()} (ED25519, {key_path}"
            + (", created now)" if created else ")"),
            f"connect: ssh -p {self.port} demo@{target}",
            "stop: ctrl+c or SIGTERM (visitors are told, demo copies removed)",
        ]
        out.write("\n".join(lines) + "\n")
        out.flush()

    async def run(self, out: Any = None) -> int:
        loop = asyncio.get_running_loop()
        await self.start(out)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        try:
            while not self.stopping.is_set():
                now = time.monotonic()
                for session in list(self.sessions):
                    session.check_limits(now)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), 0.5)
        finally:
            await self.shutdown()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return 0

    async def shutdown(self) -> None:
        """Tell every visitor, close their sessions, remove demo copies."""
        self.stopping.set()
        if self._acceptor is not None:
            self._acceptor.close()
        live = list(self.sessions)
        self.log("shutdown", sessions=len(live))
        for session in live:
            session.tell("The server is shutting down: this session closes now.", "error", 10)
        if live:
            await asyncio.sleep(self.options.shutdown_notice)
        for session in live:
            session.end("the server is shutting down")
        tasks = [s.task for s in live if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=QUIT_GRACE + 3)
        for session in live:  # never leave an app running behind us
            if session.proc is not None and session.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(session.proc.pid, signal.SIGKILL)
        if self._acceptor is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._acceptor.wait_closed(), 2)
        if self.zygote is not None:
            await self.zygote.close()
        if self.demo is not None:
            self.demo.close()

    def _zygote_lost(self, zygote: Zygote, reason: str) -> None:
        """Sessions forked by the lost zygote go on; new visitors get a new zygote (and,
        until it answers, a new interpreter each), unless this one never got ready."""
        self.zygote = None
        again = zygote.was_ready and not self.stopping.is_set()
        more = "starting another" if again else "apps start the ordinary way"
        self.log("error", error=f"zygote: {reason}; {more}")
        if again:
            self._zygote_task = asyncio.get_running_loop().create_task(self._start_zygote())

    async def _start_zygote(self) -> None:
        zygote = Zygote()
        zygote.on_lost = self._zygote_lost
        await zygote.start(app_env("{}", drop=("SMART_SUGGEST_SERVED",)))
        self.zygote = zygote


def run_ssh(options: SshOptions) -> int:
    return asyncio.run(SshServer(options).run())
