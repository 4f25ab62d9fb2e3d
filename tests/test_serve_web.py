"""`smart-suggest serve web` against a real server on 127.0.0.1: the page over HTTP, a
websocket session that gets the first screen, and a real headless browser."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

aiohttp = pytest.importorskip("aiohttp")
pyte = pytest.importorskip("pyte")
pytest.importorskip("textual_serve")

from serve_helpers import Server  # noqa: E402

from serve.web import free_port  # noqa: E402


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port("127.0.0.1")
    server = Server(tmp_path_factory.mktemp("web"), "web", ["--port", str(port)], "open:")
    yield server
    assert server.stop() == 0, server.log()
    assert list(server.temp.glob("smart-suggest-serve-*")) == [], "demo folder left behind"


def _wait(check, what: str, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting: {what}")


def test_page_is_served(web_server: Server) -> None:
    assert f"listening on http://127.0.0.1:{web_server.port} (loopback only)" in web_server.banner

    async def get() -> tuple[int, str]:
        url = f"http://127.0.0.1:{web_server.port}/"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            return response.status, await response.text()

    status, html = asyncio.run(get())
    assert status == 200
    assert f'data-session-websocket-url="ws://127.0.0.1:{web_server.port}/ws"' in html
    assert "smart-suggest" in html


def test_websocket_session_gets_first_screen_and_own_copy(web_server: Server) -> None:
    async def session() -> None:
        screen = pyte.Screen(100, 30)
        stream = pyte.ByteStream(screen)
        url = f"http://127.0.0.1:{web_server.port}/ws?width=100&height=30"
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:

            async def until(text: str, timeout: float = 30) -> None:
                deadline = time.monotonic() + timeout
                while text not in "\n".join(screen.display):
                    left = deadline - time.monotonic()
                    assert left > 0, f"{text!r} not on screen:\n" + "\n".join(screen.display)
                    try:
                        message = await ws.receive(timeout=left)
                    except TimeoutError:
                        continue
                    if message.type == aiohttp.WSMsgType.BINARY:
                        stream.feed(message.data)
                    elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        raise AssertionError("websocket closed")

            await until("Overview")
            await until("demo session")
            assert len(web_server.demo_copies()) == 1
            await ws.send_json(["stdin", "3"])
            await until("Split")

    asyncio.run(session())
    _wait(lambda: web_server.demo_copies() == [], "the visitor's copy removed after the tab closed")


def _png_colours(path: Path) -> int:
    """Distinct colours in an 8-bit RGB(A) PNG (enough to tell a blank page from an app)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    prev = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(height):
        row = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind, line = row[0], bytearray(row[1:])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        if y % 4 == 0:
            colours.update(bytes(line[i : i + 3]) for i in range(0, stride, channels * 4))
        prev = line
    return len(colours)


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


async def _cdp_session(port: int, url: str, shot: Path) -> tuple[bool, int]:
    """Drive the browser over the DevTools protocol: open ``url``, wait until the page's
    terminal got the app's first bytes (textual-serve marks <body> with ``-first-byte``),
    let it draw, save a screenshot. Returns (first byte seen, distinct colours)."""
    import base64

    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        page = next(t for t in targets if t.get("type") == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            ids = iter(range(1, 10_000))

            async def call(method: str, **params: object) -> dict[str, object]:
                msg_id = next(ids)
                await ws.send_json({"id": msg_id, "method": method, "params": params})
                while True:
                    reply = await ws.receive_json(timeout=30)
                    if reply.get("id") == msg_id:
                        return dict(reply.get("result", {}))

            await call("Page.navigate", url=url)
            seen = False
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                result = await call(
                    "Runtime.evaluate",
                    expression="document.body && document.body.classList.contains('-first-byte')",
                    returnByValue=True,
                )
                if dict(result.get("result", {})).get("value") is True:  # type: ignore[call-overload]
                    seen = True
                    break
                await asyncio.sleep(0.25)
            await asyncio.sleep(3)  # the app's first full screen, and the fade-in
            shot_data = await call("Page.captureScreenshot", format="png")
            shot.write_bytes(base64.b64decode(str(shot_data["data"])))
    return seen, _png_colours(shot)


@pytest.mark.skipif(
    _browser() is None,
    reason="no headless browser installed (Debian: apt-get install chromium; .ci/run does)",
)
def test_real_browser_renders_the_app(web_server: Server, tmp_path: Path) -> None:
    """Chromium loads the page, its JavaScript opens the websocket, the app runs and its
    screen reaches the page's terminal (a visitor copy exists meanwhile)."""
    shot = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    browser = subprocess.Popen(
        [
            str(_browser()),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--window-size=1200,800",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, HOME=str(tmp_path)),
    )
    try:
        port_file = profile / "DevToolsActivePort"
        _wait(lambda: port_file.exists() and port_file.read_text().strip() != "", "devtools")
        devtools = int(port_file.read_text().split()[0])
        copies_before = len(web_server.demo_copies())
        seen, colours = asyncio.run(
            _cdp_session(devtools, f"http://127.0.0.1:{web_server.port}/", shot)
        )
        assert seen, "the page's terminal never received the app's screen"
        assert len(web_server.demo_copies()) == copies_before + 1, "no private copy for the tab"
        assert colours > 8, "the screenshot is blank"
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
    # The tab is gone with the browser: its copy goes too.
    _wait(lambda: web_server.demo_copies() == [], "the browser visitor's copy removed")


class WebTerm:
    """One browser tab as textual-serve's page drives it: a websocket whose binary messages
    are the app's terminal output, fed into a pyte screen."""

    def __init__(self, ws: object) -> None:
        self.ws = ws
        self.screen = pyte.Screen(100, 30)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""
        self.closed = False

    def text(self) -> str:
        return "\n".join(self.screen.display)

    async def pump(self, until: object, timeout: float) -> bool:
        """Feed messages until ``until()`` holds (True) or the socket closes (False)."""
        deadline = time.monotonic() + timeout
        while not until():  # type: ignore[operator]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; screen:\n{self.text()}")
            try:
                message = await self.ws.receive(timeout=left)  # type: ignore[attr-defined]
            except TimeoutError:
                continue
            if message.type == aiohttp.WSMsgType.BINARY:
                self.raw += message.data
                self.stream.feed(message.data)
            elif message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
            ):
                self.closed = True
                return bool(until())  # type: ignore[operator]
        return True

    async def wait_for(self, text: str, timeout: float = 30) -> None:
        assert await self.pump(lambda: text in self.text(), timeout), self.text()

    async def wait_closed(self, timeout: float = 30) -> None:
        await self.pump(lambda: self.closed, timeout)
        assert self.closed


def test_web_limits_sessions_rate_idle_and_length(tmp_path: Path) -> None:
    """Two sessions at a time, three new sessions per address per minute, 6 s idle, 9 s
    at most: a third tab is told and closed; an idle tab is warned in the app, then closed
    with the reason; a tab that keeps typing is closed at the session limit; the fourth
    tab within the minute is refused."""
    port = free_port("127.0.0.1")
    server = Server(
        tmp_path,
        "web",
        [
            "--port",
            str(port),
            "--max-sessions",
            "2",
            "--rate-limit",
            "3",
            "--idle-timeout",
            "6s",
            "--max-session",
            "9s",
        ],
        "open:",
    )
    url = f"http://127.0.0.1:{port}/ws?width=100&height=30"

    async def idle(t: WebTerm) -> None:
        # Nobody types: the app shows the warning, then the session closes.
        await t.wait_for("closes in", timeout=10)
        await t.wait_closed(15)
        assert b"session closed: 6 s without a key press" in t.raw

    async def typing(t: WebTerm) -> None:
        # Keys keep the idle limit away; the session limit strikes all the same.
        started = time.monotonic()
        while not t.closed and time.monotonic() - started < 20:
            await t.ws.send_json(["stdin", "1"])  # type: ignore[attr-defined]
            with contextlib.suppress(AssertionError):
                await t.pump(lambda: t.closed, 1)
        assert t.closed
        assert b"session closed: 9 s (the longest a session may last)" in t.raw

    async def scenario() -> None:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(url) as ws1,
            http.ws_connect(url) as ws2,
        ):
            t1, t2 = WebTerm(ws1), WebTerm(ws2)
            await t1.wait_for("Overview")
            await t2.wait_for("Overview")
            async with http.ws_connect(url) as ws3:
                t3 = WebTerm(ws3)
                await t3.wait_closed(10)
                assert b"all 2 sessions are in use" in t3.raw
            await asyncio.gather(idle(t1), typing(t2))
            async with http.ws_connect(url) as ws4:
                t4 = WebTerm(ws4)
                await t4.wait_closed(10)
                assert b"too many connections from your address" in t4.raw

    try:
        asyncio.run(scenario())
    finally:
        assert server.stop() == 0
    log = server.log()
    assert "reason=max-sessions" in log and "reason=rate-limit" in log
    assert "reason=6 s without a key press" in log
    assert "reason=9 s (the longest a session may last)" in log
    assert server.demo_copies() == []


def test_web_sigterm_tells_visitors_and_removes_copies(tmp_path: Path) -> None:
    """SIGTERM: the visitor is told in the app, the app quits, the reason is on the
    visitor's terminal, the server exits 0 and removes the demo copies."""
    port = free_port("127.0.0.1")
    server = Server(tmp_path, "web", ["--port", str(port)], "open:")
    url = f"http://127.0.0.1:{port}/ws?width=100&height=30"

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            term = WebTerm(ws)
            await term.wait_for("Overview")
            assert len(server.demo_copies()) == 1
            server.proc.send_signal(signal.SIGTERM)
            await term.wait_for("shutting down", timeout=10)
            await term.wait_closed(15)
            assert b"session closed: the server is shutting down" in term.raw

    try:
        asyncio.run(scenario())
        assert server.proc.wait(20) == 0
    finally:
        server.stop()
    assert list(server.temp.glob("smart-suggest-serve-*")) == []
    assert "reason=the server is shutting down" in server.log()
