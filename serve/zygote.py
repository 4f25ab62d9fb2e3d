"""A pre-forked "zygote": the app imported once, forked for each visitor.

Starting ``smart-suggest tui`` from scratch costs each visitor an interpreter start and
the imports of Textual, NumPy, SciPy and the app: most of the time from connecting to the
first full screen, and all of it CPU that the other visitors' sessions need. The zygote
does that work once, when the server starts: it imports everything the app uses, then
waits. For each visitor the server sends it the visitor's PTY (and the control pipe) over
a Unix socket; the zygote forks, and the child makes the PTY its controlling terminal and
stdio and runs the app. The modules are already in memory, shared copy-on-write between
all the visitors.

Before forking the zygote holds no threads (BLAS pools are limited to one thread), no
event loop and no open database, so a child starts from a clean state.

Protocol (``SOCK_SEQPACKET``, one JSON object per message):

* server -> zygote: ``{"id": N, "db": PATH, "read_only": BOOL, "env": {...},
  "served": {...}}`` with two file descriptors: the PTY's slave end and the read end of
  the control pipe;
* zygote -> server: ``{"ready": true}`` once everything is imported, ``{"id": N, "pid":
  PID}`` per fork (or ``{"id": N, "error": TEXT}``) and ``{"exit": PID, "status": CODE}``
  when a child ends.

The zygote exits when the server closes its end of the socket.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import io
import json
import os
import pkgutil
import select
import signal
import socket
import sys
import termios
import traceback
from typing import Any

#: Modules the app imports only when a screen or a worker first needs them. Importing them
#: here is the point of the zygote; a missing name is only a slower first visit.
PRELOAD = (
    "numpy",
    "scipy.sparse",
    "scipy.stats",
    "smart_suggest.cli.tui",
    "smart_suggest.analysis",
    "smart_suggest.stats",
    "smart_suggest.recommend",
    "smart_suggest.experiments",
    "smart_suggest.tracking",
    "smart_suggest.tuning",
    "textual.drivers.linux_driver",
    "textual._xterm_parser",
    "textual.command",
    "textual.scrollbar",
    "textual.layouts.horizontal",
    "textual.layouts.stream",
)
#: Packages whose every module is imported (the app and the core it uses).
PRELOAD_PACKAGES = (
    "tui",
    "smart_suggest.recommend",
    "smart_suggest.analysis",
    "smart_suggest.stats",
)
#: Environment for the zygote (set by the server before Python starts): no BLAS thread
#: pools, which a fork would not carry over; on a shared 2-core server one thread each is
#: also what the visitors' small matrices want.
SINGLE_THREADED = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def preload() -> None:
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    for package in PRELOAD_PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            with contextlib.suppress(ImportError):
                importlib.import_module(info.name)


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        sock.send(json.dumps(message).encode())


def serve(sock: socket.socket) -> int:
    preload()
    from tui.app import tune_collector

    tune_collector(collect=True)  # the imported pages stay shared with every visitor
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    _send(sock, {"ready": True})
    while True:
        try:
            readable, _, _ = select.select([sock.fileno(), wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in readable:
            with contextlib.suppress(OSError):
                os.read(wake_r, 4096)
            _reap(sock)
        if sock.fileno() in readable:
            try:
                data, fds, _, _ = socket.recv_fds(sock, 65536, 2)
            except OSError:
                return 0
            if not data:
                return 0  # the server is gone
            _fork(sock, data, fds, (wake_r, wake_w))


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, {"exit": pid, "status": os.waitstatus_to_exitcode(status)})


def _fork(sock: socket.socket, data: bytes, fds: list[int], own: tuple[int, int]) -> None:
    request: dict[str, Any] = {}
    try:
        request = json.loads(data)
        if len(fds) != 2:
            raise ValueError(f"expected 2 file descriptors, got {len(fds)}")
        pid = os.fork()
    except (ValueError, OSError) as exc:
        for fd in fds:
            os.close(fd)
        _send(sock, {"id": request.get("id"), "error": str(exc)})
        return
    if pid == 0:
        code = 1
        try:
            # The zygote's signal plumbing first, so no signal writes to a closed fd.
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            sock.close()
            for fd in own:
                os.close(fd)
            code = _child(request, fds[0], fds[1])
        except BaseException:
            with contextlib.suppress(Exception):
                traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    for fd in fds:
        os.close(fd)
    _send(sock, {"id": request.get("id"), "pid": pid})


def _child(request: dict[str, Any], tty: int, control: int) -> int:
    """In the forked child: become the visitor's session on its PTY, then run the app."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.setsid()
    for target in (0, 1, 2):
        os.dup2(tty, target)
    os.close(tty)
    # The PTY hangs the app up when the server closes it: an app never outlives its session.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # Fresh stdio objects on the PTY (the zygote's were opened on other files).
    stdin = io.TextIOWrapper(
        io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="surrogateescape"
    )
    sys.stdin = stdin
    setattr(sys, "__stdin__", stdin)  # noqa: B010 (a Final name for type checkers)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = io.TextIOWrapper(
            io.FileIO(fd, "w", closefd=False),
            encoding="utf-8",
            errors="backslashreplace",
            line_buffering=True,
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    # Every child starts from the zygote's random state: reseed, so visitors do not all
    # draw the same "random" numbers (simulations without a seed, for one).
    import random

    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    served = dict(request.get("served") or {}, control_fd=control)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in request["env"].items()})
    os.environ["SMART_SUGGEST_SERVED"] = json.dumps(served)

    from pathlib import Path

    from smart_suggest.cli.tui import tui
    from smart_suggest.errors import InputError, SmartSuggestError
    from smart_suggest.termsafe import error_line

    try:
        # The same as ``smart-suggest tui --db PATH [--read-only]``; it leaves by os._exit.
        tui(db=Path(request["db"]), read_only=bool(request.get("read_only")))
    except SmartSuggestError as exc:
        sys.stderr.write(error_line(str(exc)))
        return 2 if isinstance(exc, InputError) else 1
    return 0


# -- the server's side --------------------------------------------------------------------
#: The exit status of an app whose end was seen without its status (zygote lost).
UNKNOWN_STATUS = -1


class ForkedApp:
    """An app forked by the zygote, as the server sees it (the parts of
    ``asyncio.subprocess.Process`` that the sessions use: ``pid``, ``returncode``,
    ``wait()``)."""

    def __init__(self, pid: int, done: Any) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._done = done

    def exited(self, status: int) -> None:
        if self.returncode is None:
            self.returncode = status
            if not self._done.done():
                self._done.set_result(status)

    async def wait(self) -> int:
        import asyncio

        return int(await asyncio.shield(self._done))


class ZygoteError(Exception):
    """The zygote cannot fork an app now (the server starts one the ordinary way)."""


class Zygote:
    """The server's handle on its zygote process (asyncio, in the server's loop)."""

    def __init__(self) -> None:
        self.proc: Any = None
        self.sock: socket.socket | None = None
        self.ready: Any = None
        self.alive = False
        #: It got as far as importing everything (a zygote that never did is not restarted).
        self.was_ready = False
        self.apps: dict[int, ForkedApp] = {}
        self._pending: dict[int, Any] = {}
        self._ids = 0
        #: Called (with a reason) when the zygote is lost while the server runs.
        self.on_lost: Any = None

    async def start(self, env: dict[str, str]) -> None:
        import asyncio
        import subprocess

        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "serve.zygote",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                env={**env, **SINGLE_THREADED},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                # A traceback of the zygote itself lands in the server's log.
                start_new_session=True,
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        self.sock = ours
        self.ready = loop.create_future()
        self.alive = True
        loop.add_reader(ours.fileno(), self._readable)

    async def wait_ready(self, timeout: float) -> bool:
        import asyncio

        try:
            await asyncio.wait_for(asyncio.shield(self.ready), timeout)
        except (TimeoutError, ZygoteError):
            return False
        return True

    def _readable(self) -> None:
        import asyncio

        assert self.sock is not None
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._lost("the zygote process ended")
            return
        try:
            message = json.loads(data)
        except ValueError:
            return
        if message.get("ready"):
            self.was_ready = True
            if not self.ready.done():
                self.ready.set_result(True)
        elif "exit" in message:
            app = self.apps.pop(int(message["exit"]), None)
            if app is not None:
                app.exited(int(message["status"]))
        elif "pid" in message or "error" in message:
            future = self._pending.pop(message.get("id"), None)
            if "pid" in message:
                pid = int(message["pid"])
                app = ForkedApp(pid, asyncio.get_running_loop().create_future())
                self.apps[pid] = app
                if future is not None and not future.done():
                    future.set_result(app)
            elif future is not None and not future.done():
                future.set_exception(ZygoteError(str(message["error"])))
            elif message.get("id") is None:  # a request it could not read: fail them all
                for pending in self._pending.values():
                    if not pending.done():
                        pending.set_exception(ZygoteError(str(message["error"])))
                self._pending.clear()

    async def spawn(
        self,
        db: str,
        *,
        read_only: bool,
        env: dict[str, str],
        served: dict[str, Any],
        tty: int,
        control: int,
        timeout: float = 20,
    ) -> ForkedApp:
        """Fork an app for one visitor on ``tty`` (the PTY's slave end)."""
        import asyncio

        if not self.alive or self.sock is None:
            raise ZygoteError("no zygote")
        self._ids += 1
        request_id = self._ids
        request = {
            "id": request_id,
            "db": db,
            "read_only": read_only,
            "env": env,
            "served": served,
        }
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            socket.send_fds(self.sock, [json.dumps(request).encode()], [tty, control])
        except OSError as exc:
            self._pending.pop(request_id, None)
            raise ZygoteError(f"cannot reach the zygote ({exc})") from None
        try:
            app: ForkedApp = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self._pending.pop(request_id, None)
            raise ZygoteError("the zygote did not answer") from None
        return app

    def _lost(self, reason: str) -> None:
        import asyncio

        if not self.alive:
            return
        self.alive = False
        if self.sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
        error = ZygoteError(reason)
        if self.ready is not None and not self.ready.done():
            self.ready.set_exception(error)
            self.ready.exception()  # retrieved: no "never retrieved" warning
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        # The apps live on (their visitors keep their sessions); the zygote can no longer
        # report their end, so watch each one directly (a pidfd becomes readable when
        # the process ends; its status is not ours to read).
        loop = asyncio.get_running_loop()
        for pid, app in list(self.apps.items()):
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:  # gone already
                app.exited(UNKNOWN_STATUS)
                continue

            def ended(pidfd: int = pidfd, app: ForkedApp = app) -> None:
                loop.remove_reader(pidfd)
                os.close(pidfd)
                app.exited(UNKNOWN_STATUS)

            loop.add_reader(pidfd, ended)
        self.apps.clear()
        if self.on_lost is not None:
            self.on_lost(self, reason)

    async def close(self) -> None:
        """Stop the zygote (its apps are the sessions' business)."""
        import asyncio

        on_lost, self.on_lost = self.on_lost, None
        self._lost("the server is stopping")
        self.on_lost = on_lost
        if self.proc is not None and self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()


def main() -> int:
    fd = int(sys.argv[1])
    sock = socket.socket(fileno=fd)
    # ctrl+c at the server's terminal is the server's to handle: it closes our socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return serve(sock)


if __name__ == "__main__":
    sys.exit(main())
