"""`smart-suggest serve ssh` against real servers on 127.0.0.1 (free ports), real clients.

Every server is a subprocess with its own data and temp folders; what a visitor sees is
read from a VT emulator (pyte) fed by an asyncssh client with a PTY.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

asyncssh = pytest.importorskip("asyncssh")
pytest.importorskip("pyte")

from serve_helpers import Server, connect, open_term  # noqa: E402

SERVE = [sys.executable, "-m", "smart_suggest", "serve", "ssh"]


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(
        tmp_path_factory.mktemp("ssh-demo"),
        "ssh",
        ["--port", "0", "--idle-timeout", "0", "--rate-limit", "100"],
        "connect:",
    )
    yield server
    assert server.stop() == 0, server.log()


def _users(db: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT username FROM users")}
    finally:
        conn.close()


def test_banner_host_key_and_command(demo_server: Server) -> None:
    banner = demo_server.banner
    assert "listening on 127.0.0.1:" in banner and "loopback only" in banner
    assert f"connect: ssh -p {demo_server.port} demo@127.0.0.1" in banner
    key = demo_server.data / "smart-suggest" / "ssh_host_ed25519_key"
    assert key.stat().st_mode & 0o777 == 0o600
    fingerprint = asyncssh.read_private_key(str(key)).get_fingerprint()
    assert f"host key: {fingerprint} (ED25519" in banner


def test_session_overview_screen3_resize_quit(demo_server: Server) -> None:
    async def scenario() -> None:
        async with await connect(demo_server.port) as conn:
            term = await open_term(conn, 100, 30)
            await term.wait_for("Overview")
            await term.wait_for("demo session")
            assert "smart-suggest" in term.screen.display[0]
            # The server's paths are not shown to visitors.
            await term.wait_for("a private copy of the demo data")
            assert "visitor-" not in term.text() and "smart-suggest-serve" not in term.text()
            term.send("3")
            await term.wait_for("Split")
            term.resize(130, 40)
            # Wide layout (>= 110 columns): the verdict panel sits beside the list.
            await term.wait_for("Verdict")
            await term.wait_until(
                lambda screen: (
                    screen.display[0].rstrip().endswith("demo session")
                    and len(screen.display[0].rstrip()) > 110
                ),
                "header laid out again at 130 columns",
            )
            # Colours follow the client's TERM (256 colours here), not the server's terminal.
            assert b"\x1b[38;5;" in term.raw and b"\x1b[38;2;" not in term.raw
            term.send(b"\x11")  # ctrl+q
            await term.wait_closed()
            assert term.proc.exit_status == 0
            await term.close()

    asyncio.run(scenario())
    assert demo_server.proc.poll() is None  # the server keeps running
    log = demo_server.log()
    assert "connect address=127.0.0.1" in log and "term=xterm-256color size=100x30" in log
    assert "disconnect address=127.0.0.1" in log and "size=130x40" in log
    assert "reason=quit" in log and "bytes_out=" in log and "key=open" in log


def test_refusals_exec_no_pty_subsystem_forwarding(demo_server: Server) -> None:
    async def scenario() -> None:
        async with await connect(demo_server.port) as conn:
            result = await conn.run("cat /etc/passwd", term_type=None)
            assert result.exit_status == 1 and "commands cannot be run here" in result.stderr
            assert "root:" not in result.stdout
            result = await conn.run(term_type=None)  # a shell without a PTY
            assert result.exit_status == 1 and "in a terminal" in result.stderr
            with pytest.raises(asyncssh.ChannelOpenError, match="not available"):
                await conn.open_connection("127.0.0.1", 22)
            with pytest.raises(asyncssh.Error):
                await conn.start_sftp_client()
            with pytest.raises(asyncssh.ChannelListenError):
                await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", 22)

    asyncio.run(scenario())
    log = demo_server.log()
    for reason in ("exec", "no-pty", "subsystem", "port-forwarding"):
        assert f"reason={reason}" in log, reason


def test_two_demo_visitors_are_isolated_and_copies_removed(demo_server: Server) -> None:
    async def scenario() -> None:
        async with await connect(demo_server.port) as c1, await connect(demo_server.port) as c2:
            t1 = await open_term(c1)
            t2 = await open_term(c2, env={"COLORTERM": "truecolor"})
            await t1.wait_for("Overview")
            await t2.wait_for("Overview")
            assert b"\x1b[38;2;" in t2.raw, "COLORTERM=truecolor from the client: 24-bit colour"
            copies = demo_server.demo_copies()
            assert len(copies) == 2
            t1.send("2")
            await t1.wait_for("Find")
            t1.send("a")
            await t1.wait_for("Add a user")
            t1.send("zed-visitor")
            await asyncio.sleep(0.3)
            t1.send(b"\x13")  # ctrl+s: submit
            await t1.wait_for("Added user")
            with_user = [c for c in copies if "zed-visitor" in _users(c)]
            assert len(with_user) == 1, "the user must exist in exactly one visitor's copy"
            for t in (t1, t2):
                t.send(b"\x11")
                await t.wait_closed()
                await t.close()

    asyncio.run(scenario())
    _wait(lambda: demo_server.demo_copies() == [], "copies removed after disconnect")


CLIENT = textwrap.dedent(
    """
    import asyncio, sys, asyncssh
    async def main():
        conn = await asyncssh.connect("127.0.0.1", int(sys.argv[1]), known_hosts=None,
                                      username="demo", client_keys=None, agent_path=None)
        proc = await conn.create_process(term_type="xterm", term_size=(80, 24), encoding=None)
        seen = b""
        while b"Overview" not in seen:
            seen += await proc.stdout.read(65536)
        print("ready", flush=True)
        await asyncio.sleep(60)
    asyncio.run(main())
    """
)


def test_killed_client_copy_removed(demo_server: Server) -> None:
    before = set(demo_server.demo_copies())
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(demo_server.port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == "ready"
        assert len(set(demo_server.demo_copies()) - before) == 1
        client.send_signal(signal.SIGKILL)
        client.wait(10)
    finally:
        if client.poll() is None:
            client.kill()
    _wait(lambda: set(demo_server.demo_copies()) <= before, "copy removed after kill")
    assert "reason=client left" in demo_server.log()


def _wait(check, what: str, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting: {what}")


# -- a shared database, read-only; max sessions; idle timeout ----------------------------------
def test_read_only_shared_db_max_sessions_and_idle(tmp_path: Path, demo_template: Path) -> None:
    db = tmp_path / "shared.db"
    db.write_bytes(demo_template.read_bytes())
    before = db.read_bytes()
    server = Server(
        tmp_path,
        "ssh",
        [
            "--port",
            "0",
            "--db",
            str(db),
            "--read-only",
            "--max-sessions",
            "1",
            "--idle-timeout",
            "6s",
        ],
        "connect:",
    )
    try:
        assert "read-only" in server.banner

        async def scenario() -> None:
            async with await connect(server.port) as c1:
                t1 = await open_term(c1)
                await t1.wait_for("read-only")
                assert "shared: shared.db · read-only" in t1.text()
                t1.send("x")  # Overview: clear all data
                await t1.wait_for("Not available: the database is read-only")
                assert "Delete all" not in t1.text()
                # The one slot is taken: the next visitor is told and disconnected.
                async with await connect(server.port) as c2:
                    t2 = await open_term(c2)
                    await t2.wait_closed()
                    assert "all 1 sessions are in use" in t2.plain()
                    await t2.close()
                # No key for a while: a warning, then the session closes.
                await t1.wait_for("closes in", timeout=8)
                await t1.wait_closed(timeout=10)
                assert "session closed: 6 s without a key press" in t1.plain()
                await t1.close()

        asyncio.run(scenario())
    finally:
        assert server.stop() == 0
    log = server.log()
    assert "reason=max-sessions" in log and "reason=6 s without a key press" in log
    assert db.read_bytes() == before, "a read-only session changed the database file"


# -- authentication, addresses, rate limit ------------------------------------------------------
def test_public_key_auth_accepts_listed_key_only(tmp_path: Path) -> None:
    good = asyncssh.generate_private_key("ssh-ed25519")
    bad = asyncssh.generate_private_key("ssh-ed25519")
    keys = tmp_path / "authorized_keys"
    keys.write_bytes(b"# visitors\n" + good.export_public_key())
    server = Server(
        tmp_path,
        "ssh",
        ["--port", "0", "--authorized-keys", str(keys), "--rate-limit", "3"],
        "connect:",
    )
    try:
        assert "public-key login: 1 key(s)" in server.banner

        async def scenario() -> None:
            async with await connect(server.port, client_keys=[good]) as conn:
                assert conn.get_extra_info("username") == "demo"
            with pytest.raises(asyncssh.PermissionDenied):
                await connect(server.port, client_keys=[bad])
            with pytest.raises(asyncssh.PermissionDenied):
                await connect(server.port)  # no key at all
            # The fourth connection within a minute from this address: disconnected.
            with pytest.raises((asyncssh.DisconnectError, ConnectionError)) as info:
                await connect(server.port, client_keys=[good])
            assert "too many connections" in str(info.value)

        asyncio.run(scenario())
    finally:
        assert server.stop() == 0
    log = server.log()
    assert "reason=key-not-authorized" in log and "reason=rate-limit" in log
    assert bad.get_fingerprint() in log


def test_public_address_needs_keys_or_open(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path))
    proc = subprocess.run(
        [*SERVE, "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "--authorized-keys" in proc.stderr and "--open" in proc.stderr
    assert not (tmp_path / "smart-suggest").exists()  # nothing created, not even a host key


def test_sigterm_tells_visitors_and_removes_copies(tmp_path: Path) -> None:
    server = Server(tmp_path, "ssh", ["--port", "0", "--log-json"], "connect:")

    async def scenario() -> None:
        async with await connect(server.port) as conn:
            term = await open_term(conn)
            await term.wait_for("Overview")
            assert len(server.demo_copies()) == 1
            server.proc.send_signal(signal.SIGTERM)
            await term.wait_for("shutting down", timeout=10)
            await term.wait_closed()
            assert "session closed: the server is shutting down" in term.plain()
            await term.close()

    try:
        asyncio.run(scenario())
        assert server.proc.wait(20) == 0
    finally:
        server.stop()
    assert list(server.temp.glob("smart-suggest-serve-*")) == []
    import json

    events = [json.loads(line) for line in server.log().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[:1] == ["connect"] and "shutdown" in kinds and kinds[-1] == "disconnect"
    assert events[-1]["reason"] == "the server is shutting down"
    assert {"time", "address", "key", "size", "duration", "bytes_in", "bytes_out"} <= set(
        events[-1]
    )


FLOOD = (
    "import os, sys\n"
    "sys.stdin.read(1)\n"  # start when the visitor presses a key
    "n = 0\n"
    "while n < 64 * 1024 * 1024:\n"
    "    n += os.write(1, b'x' * 65536)\n"
)


def test_slow_client_output_is_bounded(tmp_path: Path) -> None:
    """A client that stops reading: the server stops reading the app's terminal once the
    channel holds WRITE_HIGH bytes, instead of buffering whatever the app writes; reading
    again resumes the flow. The server runs in this process so its buffer can be watched,
    and its "app" writes 64 MiB as fast as it can (the real app's output is CPU-bound)."""
    import io

    from serve import ssh

    def flood(db: Path, *, read_only: bool) -> list[str]:
        return [sys.executable, "-c", FLOOD]

    async def scenario() -> None:
        server = ssh.SshServer(
            ssh.SshOptions(port=0, idle_timeout=None, host_key=tmp_path / "key"),
            log=lambda *a, **k: None,
            command=flood,
        )
        await server.start(io.StringIO())
        try:
            async with await connect(server.port) as conn:
                # A small receive window, and nobody reading stdout.
                proc = await conn.create_process(
                    term_type="xterm", term_size=(80, 24), encoding=None, window=8192
                )
                while not server.sessions or next(iter(server.sessions)).master is None:
                    await asyncio.sleep(0.05)
                session = next(iter(server.sessions))
                await asyncio.sleep(0.5)
                proc.stdin.write(b"go\r")
                peak, paused = 0, False
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                    peak = max(peak, session.chan.get_write_buffer_size())
                    paused = paused or not session.reading
                assert paused, "the server never stopped reading the app's output"
                assert peak <= ssh.WRITE_HIGH + 65536, peak
                assert session.bytes_out <= ssh.WRITE_HIGH + 4 * 65536, session.bytes_out
                # Reading again: the flow resumes (more than the bound arrives).
                got = 0
                while got < 4 * ssh.WRITE_HIGH:
                    got += len(await asyncio.wait_for(proc.stdout.read(65536), 10))
                assert session.bytes_out > 2 * ssh.WRITE_HIGH
                conn.close()
        finally:
            await server.shutdown()

    asyncio.run(scenario())


NOTICES = (
    "import json, os, sys, termios\n"
    # No echo of the visitor's keys: it could land inside the lines the test reads.
    "mode = termios.tcgetattr(0)\n"
    "mode[3] &= ~termios.ECHO\n"
    "termios.tcsetattr(0, termios.TCSANOW, mode)\n"
    "fd = json.loads(os.environ['SMART_SUGGEST_SERVED'])['control_fd']\n"
    "print('ready', flush=True)\n"
    "for line in os.fdopen(fd):\n"
    "    message = json.loads(line)\n"
    "    if 'quit' in message:\n"
    "        print('quit:', message['quit'], flush=True)\n"
    "        break\n"
    "    print('notice:', message['notify'], flush=True)\n"
)


@pytest.mark.parametrize(
    ("limits", "typing", "expected"),
    [
        ({"max_session": 3.0}, True, "3 s (the longest a session may last)"),
        ({"idle_timeout": 3.0}, False, "3 s without a key press"),
    ],
)
def test_limits_warn_then_close(
    tmp_path: Path, limits: dict[str, float], typing: bool, expected: str
) -> None:
    """The session limits as the app sees them: a notice before, then a request to quit,
    then the reason on the visitor's terminal. The "app" here prints what the server's
    control pipe tells it (the real app's side is in test_tui_served.py)."""
    import io

    from serve import ssh

    def notices(db: Path, *, read_only: bool) -> list[str]:
        return [sys.executable, "-c", NOTICES]

    options = {"idle_timeout": None, "max_session": None, **limits}
    server = ssh.SshServer(
        ssh.SshOptions(port=0, host_key=tmp_path / "key", **options),  # type: ignore[arg-type]
        log=lambda *a, **k: None,
        command=notices,
    )

    async def scenario() -> str:
        task = asyncio.ensure_future(server.run(io.StringIO()))
        while server.port == 0 or server._acceptor is None:
            await asyncio.sleep(0.02)
        try:
            async with await connect(server.port) as conn:
                proc = await conn.create_process(term_type="xterm", encoding=None)
                out = b""
                while b"session closed" not in out:
                    chunk = await asyncio.wait_for(proc.stdout.read(4096), 10)
                    if not chunk:
                        break
                    out += chunk
                    if typing and b"quit:" not in out:
                        proc.stdin.write(b"k")  # keys do not extend the session length
                return out.decode()
        finally:
            server.stopping.set()
            await task

    out = asyncio.run(scenario())
    assert re.search(r"notice: .* closes in \d s", out), out
    assert f"quit: {expected}" in out
    assert f"session closed: {expected}" in out
    assert out.index("notice:") < out.index("quit:")


def test_log_lines_escape_what_clients_send() -> None:
    """A command or terminal type from a client reaches the log as visible escapes."""
    import io
    import json

    from serve.ssh import EventLog

    out = io.StringIO()
    EventLog(False, out)("refused", command="ls \x1b]52;c;eA==\x07", reason="exec")
    EventLog(True, out)("connect", term="xterm\x1b[2J\u202e")
    text, js = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue() and "\u202e" not in out.getvalue()
    assert "command=ls \\x1b]52;c;eA==\\x07 reason=exec" in text
    assert json.loads(js)["term"] == "xterm\x1b[2J\u202e"  # exact for a JSON reader


AGENT_PROBE = (
    "import os, sys\n"
    "print('agent:', os.environ.get('SSH_AUTH_SOCK'), 'display:', os.environ.get('DISPLAY'),"
    " flush=True)\n"
    "sys.stdin.read(1)\n"
)


def test_agent_and_x11_forwarding_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client asking for agent forwarding gets no agent socket on the server side, one
    asking for X11 forwarding is refused, and the app never sees the operator's own agent
    or display (the server's environment has both here)."""
    import io

    from serve import ssh

    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "operator-agent.sock"))
    monkeypatch.setenv("DISPLAY", ":0")

    def probe(db: Path, *, read_only: bool) -> list[str]:
        return [sys.executable, "-c", AGENT_PROBE]

    xauth = tmp_path / "Xauthority"
    xauth.write_bytes(b"")

    async def scenario() -> None:
        server = ssh.SshServer(
            ssh.SshOptions(port=0, idle_timeout=None, host_key=tmp_path / "key"),
            log=lambda *a, **k: None,
            command=probe,
        )
        await server.start(io.StringIO())
        try:
            # The client forwards an agent socket of its own (it need not exist: the
            # server must not even set up a listener for it).
            async with await connect(
                server.port, agent_forwarding=str(tmp_path / "client-agent.sock")
            ) as conn:
                proc = await conn.create_process(
                    term_type="xterm", term_size=(80, 24), encoding=None
                )
                line = await asyncio.wait_for(proc.stdout.readline(), 20)
                assert line.strip() == b"agent: None display: None", line
                session = next(iter(server.sessions))
                assert session.chan is not None
                assert session.chan.get_agent_path() is None
                proc.stdin.write(b"q\r")
                await asyncio.wait_for(proc.wait_closed(), 10)
            async with await connect(server.port) as conn:
                with pytest.raises(
                    asyncssh.ChannelOpenError, match="X11 forwarding request failed"
                ):
                    await conn.create_process(
                        term_type="xterm",
                        x11_forwarding=True,
                        x11_display="127.0.0.1:0",
                        x11_auth_path=str(xauth),
                    )
        finally:
            await server.shutdown()

    asyncio.run(scenario())


def test_apps_are_forked_by_the_zygote_and_outlive_it(tmp_path: Path) -> None:
    """Each visitor's app is a child of the zygote (no new interpreter). If the zygote
    dies, live sessions go on, the server starts another zygote for new visitors, and
    the end of an app it forked is still noticed."""
    from serve_helpers import children, zygote_pid

    server = Server(tmp_path, "ssh", ["--port", "0", "--idle-timeout", "0"], "connect:")

    async def scenario() -> None:
        async with await connect(server.port) as c1:
            t1 = await open_term(c1)
            await t1.wait_for("Overview")
            zygote = zygote_pid(server.proc.pid)
            assert zygote is not None
            assert len(children(zygote)) == 1, "the app is not the zygote's child"
            assert children(server.proc.pid) == [zygote]
            os.kill(zygote, signal.SIGKILL)
            t1.send("3")
            await t1.wait_for("Split")  # the session goes on
            _wait(lambda: zygote_pid(server.proc.pid) not in (None, zygote), "a new zygote")
            async with await connect(server.port) as c2:
                t2 = await open_term(c2)
                await t2.wait_for("Overview")
                assert len(children(zygote_pid(server.proc.pid) or 0)) == 1
                t2.send(b"\x11")
                await t2.wait_closed()
                await t2.close()
            t1.send(b"\x11")
            await t1.wait_closed()
            await t1.close()

    try:
        asyncio.run(scenario())
        _wait(lambda: server.log().count(" disconnect ") == 2, "both disconnects logged")
    finally:
        assert server.stop() == 0
    log = server.log()
    assert "zygote: the zygote process ended; starting another" in log
    assert "reason=app ended" in log and "reason=quit" in log
    assert server.demo_copies() == []


def test_without_zygote_each_app_is_a_new_interpreter(tmp_path: Path) -> None:
    """``--no-zygote`` (and the fallback when no zygote answers): the app runs as
    ``python -m smart_suggest tui`` on the visitor's PTY, a direct child of the server."""
    from serve_helpers import children, zygote_pid

    server = Server(
        tmp_path, "ssh", ["--port", "0", "--idle-timeout", "0", "--no-zygote"], "connect:"
    )

    async def scenario() -> None:
        async with await connect(server.port) as conn:
            term = await open_term(conn)
            await term.wait_for("Overview")
            await term.wait_for("demo session")
            assert zygote_pid(server.proc.pid) is None
            (app,) = children(server.proc.pid)
            assert b"smart_suggest\0tui" in Path(f"/proc/{app}/cmdline").read_bytes()
            term.send(b"\x11")
            await term.wait_closed()
            assert term.proc.exit_status == 0
            await term.close()

    try:
        asyncio.run(scenario())
    finally:
        assert server.stop() == 0
    assert "reason=quit" in server.log() and server.demo_copies() == []
