"""`smart-suggest serve ssh` under load: N concurrent visitors typing through the screens.

Run: python benchmarks/bench_serve.py [--sessions 20] [--seconds 30] [--interval 0.2]

Starts a real demo server on a free loopback port (its own data and temp folders), then:

1. **connect -> first full screen**, one visitor at a time (``--connects`` of them): from
   opening the TCP connection to the overview with its counts on the visitor's screen
   (SSH handshake, demo copy, app process start, first frames). Median and max.
2. **demo copy** per visitor: the server logs how long each copy of the template took.
3. **N concurrent sessions** (connected one after another, then all typing): every
   session presses 1, 2, 3, 1, ... one key per ``--interval`` seconds, and each keystroke
   is timed until the visitor's screen (a pyte VT emulator fed by the SSH channel) shows
   the screen that key selects. p50/p95/max over every keystroke of every session;
   disconnects counted.
4. **memory per session**: RSS and PSS (shared pages split between the processes that
   share them) of every app process, read from /proc while all N are live; the server's own
   RSS.

Figures on a shared 2-core machine are noisy: run it several times and quote medians.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncssh
import pyte

#: What each key shows: a string found only on that screen (its footer keys).
SCREENS = {"1": "Load sample", "2": "Strategies", "3": "Simulate"}
FIRST_SCREEN = ("Load sample", "Interactions")


def start_server(tmp: Path, sessions: int) -> tuple[subprocess.Popen[str], int, Path]:
    env = dict(os.environ, XDG_DATA_HOME=str(tmp / "data"), TMPDIR=str(tmp))
    env.pop("SMART_SUGGEST_DB", None)
    log = tmp / "server.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smart_suggest",
            "serve",
            "ssh",
            "--port",
            "0",
            "--max-sessions",
            str(sessions + 2),
            "--rate-limit",
            "1000",
            "--idle-timeout",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        env=env,
        text=True,
    )
    assert proc.stdout is not None
    port = 0
    for line in proc.stdout:
        if match := re.search(r"listening on [^ ]+:(\d+)", line):
            port = int(match.group(1))
        if line.startswith("connect:"):
            break
    assert port, "server did not start"
    return proc, port, log


class Visitor:
    def __init__(self, port: int, cols: int = 100, rows: int = 30) -> None:
        self.port = port
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.changed = asyncio.Event()
        self.closed = False
        #: Raw bytes received since the last key (pyte is skipped while typing: parsing 20
        #: full-screen streams would load the same two cores as the apps).
        self.since_key = bytearray()
        self.parse = True
        self.conn: asyncssh.SSHClientConnection | None = None

    def shows(self, *texts: str) -> bool:
        text = "\n".join(self.screen.display)
        return all(t in text for t in texts)

    async def connect(self) -> float:
        started = time.perf_counter()
        self.conn = await asyncssh.connect(
            "127.0.0.1",
            self.port,
            known_hosts=None,
            username="demo",
            client_keys=None,
            agent_path=None,
        )
        self.proc = await self.conn.create_process(
            term_type="xterm-256color", term_size=(100, 30), encoding=None
        )
        self.pump = asyncio.ensure_future(self._pump())
        await self.wait(*FIRST_SCREEN, timeout=60)
        return time.perf_counter() - started

    async def _pump(self) -> None:
        while True:
            data = await self.proc.stdout.read(65536)
            if not data:
                self.closed = True
                self.changed.set()
                return
            self.since_key += data
            if self.parse:
                self.stream.feed(data)
            self.changed.set()

    async def wait(self, *texts: str, timeout: float = 10) -> bool:
        deadline = time.perf_counter() + timeout
        while not self.shows(*texts):
            if self.closed:
                return False
            left = deadline - time.perf_counter()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                return False
        return True

    async def wait_raw(self, marker: bytes | None, timeout: float = 10) -> bool:
        """Until the bytes since the key contain ``marker`` (any bytes when None)."""
        deadline = time.perf_counter() + timeout
        while not (marker in self.since_key if marker else self.since_key):
            left = deadline - time.perf_counter()
            if self.closed or left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                return False
        return True

    async def type_through(self, seconds: float, interval: float) -> dict[str, list[float]]:
        """On each screen: down, down, then the next screen's key; one key per interval.

        A screen key counts when the new screen's footer arrives; an arrow key when the
        app's first output after it arrives (the moved highlight; the app writes nothing
        while idle)."""
        self.parse = False
        latencies: dict[str, list[float]] = {"switch": [], "move": []}
        plan = ["down", "down", "2", "down", "down", "3", "down", "down", "1"]
        end = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < end and not self.closed:
            key = plan[i % len(plan)]
            i += 1
            self.since_key = bytearray()
            sent = time.perf_counter()
            if key == "down":
                self.proc.stdin.write(b"\x1b[B")
                ok = await self.wait_raw(None)
                kind = "move"
            else:
                self.proc.stdin.write(key.encode())
                ok = await self.wait_raw(SCREENS[key].encode())
                kind = "switch"
            latencies[kind].append(time.perf_counter() - sent if ok else float("inf"))
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - sent)))
        self.parse = True
        return latencies

    async def close(self) -> None:
        if self.conn is not None:
            self.proc.stdin.write(b"\x11")
            await asyncio.sleep(0.2)
            self.conn.close()
        self.pump.cancel()


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def zygote_pid(server_pid: int) -> int | None:
    for pid in children(server_pid):
        with contextlib.suppress(OSError):
            if b"serve.zygote" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    return None


def app_pids(server_pid: int) -> list[int]:
    """The visitors' app processes: the server's children, or the zygote's."""
    zygote = zygote_pid(server_pid)
    apps = [p for p in children(server_pid) if p != zygote]
    return apps + (children(zygote) if zygote is not None else [])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kb(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(
    args: argparse.Namespace, port: int, server: subprocess.Popen[str]
) -> dict[str, object]:
    out: dict[str, object] = {}
    # 1. connect -> first full screen, one visitor at a time.
    connects = []
    for _ in range(args.connects):
        v = Visitor(port)
        connects.append(await v.connect())
        await v.close()
        await asyncio.sleep(0.5)
    out["connect"] = connects
    # 3. N concurrent sessions.
    visitors = [Visitor(port) for _ in range(args.sessions)]
    started = time.perf_counter()
    ramp = []
    for v in visitors:  # one after another, as visitors arrive
        ramp.append(await v.connect())
    out["ramp"] = ramp
    out["ramp_seconds"] = time.perf_counter() - started
    await asyncio.sleep(2)  # let every app finish its warm-up

    # First visit of each screen (the recommender snapshot and the analysis are computed
    # then, once per visitor): timed apart from the steady typing below.
    async def first_visits(v: Visitor) -> list[float]:
        times = []
        for key in ("2", "3", "1"):
            sent = time.perf_counter()
            v.proc.stdin.write(key.encode())
            await v.wait(SCREENS[key], timeout=60)
            times.append(time.perf_counter() - sent)
        return times

    firsts = await asyncio.gather(*(first_visits(v) for v in visitors))
    out["first_visits"] = [x for f in firsts for x in f]
    pids = app_pids(server.pid)
    mem = [memory_kb(p) for p in pids]
    out["apps"] = len(pids)
    out["rss_mb"] = [r / 1024 for r, _ in mem]
    out["pss_mb"] = [p / 1024 for _, p in mem]
    out["server_rss_mb"] = memory_kb(server.pid)[0] / 1024
    results = await asyncio.gather(*(v.type_through(args.seconds, args.interval) for v in visitors))
    out["switch"] = [x for r in results for x in r["switch"]]
    out["move"] = [x for r in results for x in r["move"]]
    out["latencies"] = out["switch"] + out["move"]  # type: ignore[operator]
    out["disconnected"] = sum(v.closed for v in visitors)
    mem = [memory_kb(p) for p in app_pids(server.pid)]
    out["pss_after_mb"] = [p / 1024 for _, p in mem]
    for v in visitors:
        await v.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--connects", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server, port, log = start_server(Path(tmp), args.sessions)
        try:
            out = asyncio.run(run(args, port, server))
        finally:
            server.terminate()
            server.wait(30)
        copies = [float(m) for m in re.findall(r"copy_ms=([\d.]+)", log.read_text())]
    lat = [x for x in out["latencies"] if x != float("inf")]  # type: ignore[attr-defined]
    lost = len(out["latencies"]) - len(lat)  # type: ignore[arg-type]
    connect = out["connect"]
    ramp = out["ramp"]
    pss = out["pss_mb"]
    rss = out["rss_mb"]
    print(
        f"serve ssh benchmark: demo server, {args.sessions} sessions, 100x30 terminals, "
        f"cpu count {os.cpu_count()}"
    )
    print(
        f"connect -> first full screen (one visitor at a time, {len(connect)}): "  # type: ignore[arg-type]
        f"median {statistics.median(connect):.2f} s, max {max(connect):.2f} s  (target 2 s)"
    )  # type: ignore[arg-type]
    print(
        f"demo copy per visitor ({len(copies)} copies): median {statistics.median(copies):.1f} ms,"
        f" max {max(copies):.1f} ms  (target 100 ms)"
    )
    print(
        f"{args.sessions} visitors arriving one after another: all on screen after "
        f"{out['ramp_seconds']:.1f} s (each: median {statistics.median(ramp):.2f} s, "  # type: ignore[arg-type]
        f"max {max(ramp):.2f} s)"
    )  # type: ignore[arg-type]
    print(
        f"keystrokes: {len(out['latencies'])} over {args.seconds:.0f} s, one per "  # type: ignore[arg-type]
        f"{args.interval * 1000:.0f} ms per session (down, down, next screen); "
        f"not answered within 10 s: {lost}"
    )
    for name, values in (
        ("all keys", lat),
        ("screen switches", out["switch"]),
        ("cursor moves", out["move"]),
    ):
        done = [x for x in values if x != float("inf")]  # type: ignore[attr-defined]
        if done:
            print(
                f"  keystroke -> updated screen, {name} ({len(done)}): p50 "
                f"{statistics.median(done) * 1000:.0f} ms, p95 {pct(done, 0.95) * 1000:.0f} ms, "
                f"max {max(done) * 1000:.0f} ms  (target p95 300 ms)"
            )
    firsts = out["first_visits"]
    print(
        f"first visit of each screen (all {args.sessions} at once, untimed by the typing): "
        f"median {statistics.median(firsts) * 1000:.0f} ms, max {max(firsts) * 1000:.0f} ms"
    )  # type: ignore[arg-type]
    print(f"disconnected during the run: {out['disconnected']}")
    print(
        f"memory per app process ({out['apps']} live): PSS median "
        f"{statistics.median(pss):.0f} MB, max {max(pss):.0f} MB; RSS median "  # type: ignore[arg-type]
        f"{statistics.median(rss):.0f} MB  (target 120 MB); after typing PSS median "  # type: ignore[arg-type]
        f"{statistics.median(out['pss_after_mb']):.0f} MB; server RSS "  # type: ignore[arg-type]
        f"{out['server_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
