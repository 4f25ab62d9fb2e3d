"""`smart-suggest serve ssh` under load: N concurrent visitors typing through the screens.

Run: python benchmarks/bench_serve.py [--sessions 20] [--seconds 20] [--interval 0.2]
     [--connects 5] [--idle 5] [--no-zygote]

Starts a real demo server on a free loopback port (its own data and temp folders), then:

1. **connect -> first full screen**, one visitor at a time (``--connects`` of them): from
   opening the TCP connection to the overview with its counts on the visitor's screen
   (SSH handshake, demo copy, the app forked by the zygote or, with ``--no-zygote``, a new
   interpreter, first frames). Median and max, and the CPU it took: the new app's and the
   server's (with the zygote's).
2. **demo copy** per visitor: the server logs how long each copy of the template took.
3. **N concurrent sessions** connected one after another, then each screen visited once
   (the first visit builds the recommender and runs the analysis: timed apart). Then one
   of them types alone (``--solo`` cycles): the app's CPU per screen switch and per cursor
   move, and from it how many visitors typing at this pace the cores can carry at all.
4. **idle**: CPU used by all N apps and by the server while nobody types (``--idle`` s).
5. **typing**: every session, at the same time, presses one key per ``--interval``
   seconds: down, up, then the next screen's key (2, 3, 1, ...), so it cycles through
   all three screens, one screen switch and two cursor moves every three keys. A screen
   key is timed until the new screen's footer arrives on the visitor's side, an arrow key
   until the app's first output after it. p50/p95/max per key type over every keystroke
   of every session; disconnects counted; CPU of the apps and of the server over the run.
6. **memory per session**: RSS and PSS (shared pages split between the processes that
   share them) of every app process, read from /proc while all N are live; the server's own
   RSS and the zygote's PSS.

Figures on a shared 2-core machine are noisy: the load average is printed with them; run
it several times and quote medians. The whole run takes about a minute for 20 sessions.
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
#: The keys every visitor types, one per interval: on each screen the highlight goes down a
#: row and back up (so it always moves, however long the run), then the next screen.
PLAN = ["down", "up", "2", "down", "up", "3", "down", "up", "1"]
ARROWS = {"down": b"\x1b[B", "up": b"\x1b[A"}


def start_server(
    tmp: Path, sessions: int, zygote: bool = True
) -> tuple[subprocess.Popen[str], int, Path]:
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
            "--zygote" if zygote else "--no-zygote",
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
        """On each screen: down, up, then the next screen's key; one key per interval.

        A screen key counts when the new screen's footer arrives; an arrow key when the
        app's first output after it arrives (the moved highlight; the app writes nothing
        while idle)."""
        self.parse = False
        latencies: dict[str, list[float]] = {"switch": [], "move": []}
        plan = PLAN
        end = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < end and not self.closed:
            key = plan[i % len(plan)]
            i += 1
            self.since_key = bytearray()
            sent = time.perf_counter()
            if key in ARROWS:
                self.proc.stdin.write(ARROWS[key])
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


def server_cpu(server_pid: int) -> float:
    """CPU of the server and of its zygote (not of the visitors' apps)."""
    zygote = zygote_pid(server_pid)
    return cpu_seconds(server_pid) + (cpu_seconds(zygote) if zygote is not None else 0.0)


def apps_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(p) for p in pids)


async def run(
    args: argparse.Namespace, port: int, server: subprocess.Popen[str]
) -> dict[str, object]:
    out: dict[str, object] = {"load_before": os.getloadavg()}
    # 1. connect -> first full screen, one visitor at a time, with the CPU it took: the new
    # app's own (all of it, it is a new process) and the server's (with the zygote's).
    connects, connect_app_cpu, connect_server_cpu = [], [], []
    for _ in range(args.connects):
        before = set(app_pids(server.pid))
        server_before = server_cpu(server.pid)
        v = Visitor(port)
        connects.append(await v.connect())
        new = [p for p in app_pids(server.pid) if p not in before]
        connect_app_cpu.append(apps_cpu(new))
        connect_server_cpu.append(server_cpu(server.pid) - server_before)
        await v.close()
        await asyncio.sleep(0.5)
    out["connect"] = connects
    out["connect_app_cpu"] = connect_app_cpu
    out["connect_server_cpu"] = connect_server_cpu
    # 3. N concurrent sessions.
    visitors = [Visitor(port) for _ in range(args.sessions)]
    pids_before_ramp = set(app_pids(server.pid))
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
            await v.wait(SCREENS[key], timeout=30)
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
    zygote = zygote_pid(server.pid)
    out["zygote_pss_mb"] = memory_kb(zygote)[1] / 1024 if zygote is not None else None
    # One visitor typing alone (the others idle): the app's CPU per key type, which says
    # how many typing visitors the cores can carry at all.
    solo = visitors[0]
    solo_pid = next(p for p in app_pids(server.pid) if p not in pids_before_ramp)
    solo.parse = False
    solo_cpu: dict[str, list[float]] = {"switch": [], "move": []}
    solo_wall: dict[str, list[float]] = {"switch": [], "move": []}
    for key in PLAN * args.solo:
        solo.since_key = bytearray()
        before = cpu_seconds(solo_pid)
        sent = time.perf_counter()
        if key in ARROWS:
            solo.proc.stdin.write(ARROWS[key])
            await solo.wait_raw(None)
        else:
            solo.proc.stdin.write(key.encode())
            await solo.wait_raw(SCREENS[key].encode())
        solo_wall["move" if key in ARROWS else "switch"].append(time.perf_counter() - sent)
        await asyncio.sleep(0.3)  # the key's last frames (and CPU ticks) land
        solo_cpu["move" if key in ARROWS else "switch"].append(cpu_seconds(solo_pid) - before)
    solo.parse = True
    out["solo_cpu"] = solo_cpu
    out["solo_wall"] = solo_wall
    # 4. all N idle: what sessions cost when nobody types.
    await asyncio.sleep(1)
    idle_apps, idle_server, idle_t = apps_cpu(pids), server_cpu(server.pid), time.perf_counter()
    await asyncio.sleep(args.idle)
    idle_wall = time.perf_counter() - idle_t
    out["idle_apps_cpu"] = (apps_cpu(pids) - idle_apps) / idle_wall
    out["idle_server_cpu"] = (server_cpu(server.pid) - idle_server) / idle_wall
    # 5. all N typing.
    out["load_typing_before"] = os.getloadavg()
    typing_apps, typing_server = apps_cpu(pids), server_cpu(server.pid)
    typing_t = time.perf_counter()
    results = await asyncio.gather(*(v.type_through(args.seconds, args.interval) for v in visitors))
    out["typing_wall"] = time.perf_counter() - typing_t
    out["typing_apps_cpu"] = apps_cpu(pids) - typing_apps
    out["typing_server_cpu"] = server_cpu(server.pid) - typing_server
    out["load_after"] = os.getloadavg()
    out["switch"] = [x for r in results for x in r["switch"]]
    out["move"] = [x for r in results for x in r["move"]]
    out["latencies"] = out["switch"] + out["move"]  # type: ignore[operator]
    out["disconnected"] = sum(v.closed for v in visitors)
    mem = [memory_kb(p) for p in app_pids(server.pid)]
    out["pss_after_mb"] = [p / 1024 for _, p in mem]
    for v in visitors:
        await v.close()
    return out


def _ms(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values) * 1000:.0f} ms, p95 {pct(values, 0.95) * 1000:.0f} ms, "
        f"max {max(values) * 1000:.0f} ms"
    )


def _load(values: object) -> str:
    return "/".join(f"{x:.1f}" for x in values)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--connects", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of all sessions idle")
    parser.add_argument(
        "--solo", type=int, default=6, help="cycles (down, up, next screen) of one visitor alone"
    )
    parser.add_argument(
        "--no-zygote",
        action="store_true",
        help="start a new interpreter per visitor (the server's --no-zygote), to compare",
    )
    args = parser.parse_args()
    wall0, cpu0 = time.perf_counter(), os.times()
    with tempfile.TemporaryDirectory() as tmp:
        server, port, log = start_server(Path(tmp), args.sessions, zygote=not args.no_zygote)
        try:
            out = asyncio.run(run(args, port, server))
        finally:
            server.terminate()
            server.wait(30)
        copies = [float(m) for m in re.findall(r"copy_ms=([\d.]+)", log.read_text())]
    lat = [x for x in out["latencies"] if x != float("inf")]  # type: ignore[attr-defined]
    lost = len(out["latencies"]) - len(lat)  # type: ignore[arg-type]
    connect: list[float] = out["connect"]  # type: ignore[assignment]
    ramp: list[float] = out["ramp"]  # type: ignore[assignment]
    pss: list[float] = out["pss_mb"]  # type: ignore[assignment]
    rss: list[float] = out["rss_mb"]  # type: ignore[assignment]
    keys = len(out["latencies"])  # type: ignore[arg-type]
    print(
        f"serve ssh benchmark: demo server ({'no zygote' if args.no_zygote else 'zygote'}), "
        f"{args.sessions} sessions, 100x30 terminals, cpu count {os.cpu_count()}, "
        f"load average (1/5/15 min) at start {_load(out['load_before'])}"
    )
    print(
        f"connect -> first full screen (one visitor at a time, {len(connect)}): median "
        f"{statistics.median(connect):.2f} s, max {max(connect):.2f} s  (target 2 s); CPU per "
        f"connect: app {statistics.median(out['connect_app_cpu']):.2f} s, server + zygote "  # type: ignore[arg-type]
        f"{statistics.median(out['connect_server_cpu']):.2f} s (medians)"  # type: ignore[arg-type]
    )
    print(
        f"demo copy per visitor ({len(copies)} copies): median {statistics.median(copies):.1f} ms,"
        f" max {max(copies):.1f} ms  (target 100 ms)"
    )
    print(
        f"{args.sessions} visitors arriving one after another: all on screen after "
        f"{out['ramp_seconds']:.1f} s (each: median {statistics.median(ramp):.2f} s, "
        f"max {max(ramp):.2f} s)"
    )
    solo_cpu: dict[str, list[float]] = out["solo_cpu"]  # type: ignore[assignment]
    per_switch = statistics.mean(solo_cpu["switch"])
    per_move = statistics.mean(solo_cpu["move"])
    demand = (per_switch + 2 * per_move) / (3 * args.interval)
    print(
        f"one visitor typing alone (the others idle), app CPU: per screen switch "
        f"{per_switch * 1000:.0f} ms, per cursor move {per_move * 1000:.0f} ms (means of "
        f"{len(solo_cpu['switch'])} / {len(solo_cpu['move'])}); at one key per "
        f"{args.interval * 1000:.0f} ms that is {demand:.2f} cores per typing visitor, so "
        f"{os.cpu_count()} cores carry about {(os.cpu_count() or 1) / demand:.0f} of them; "
        f"keystroke -> updated screen alone: switches p50 "
        f"{statistics.median(out['solo_wall']['switch']) * 1000:.0f} ms, moves p50 "  # type: ignore[index]
        f"{statistics.median(out['solo_wall']['move']) * 1000:.0f} ms"  # type: ignore[index]
    )
    print(
        f"all {args.sessions} idle for {args.idle:.0f} s: apps {out['idle_apps_cpu']:.3f} CPU-s/s "
        f"in all, server + zygote {out['idle_server_cpu']:.3f} CPU-s/s"
    )
    typing_wall: float = out["typing_wall"]  # type: ignore[assignment]
    apps_used: float = out["typing_apps_cpu"]  # type: ignore[assignment]
    server_used: float = out["typing_server_cpu"]  # type: ignore[assignment]
    print(
        f"typing: {keys} keystrokes over {typing_wall:.0f} s, each session one key per "
        f"{args.interval * 1000:.0f} ms cycling (down, up, next screen) through screens "
        f"1 -> 2 -> 3 -> 1; not answered within 10 s: {lost}; load average before/after "
        f"{_load(out['load_typing_before'])} / {_load(out['load_after'])}"
    )
    print(
        f"  CPU while typing: apps {apps_used:.1f} s ({apps_used / typing_wall:.2f} cores, "
        f"{apps_used / max(keys, 1) * 1000:.0f} ms per keystroke), server "
        f"{server_used:.1f} s ({server_used / max(keys, 1) * 1000:.1f} ms per keystroke); "
        f"the machine has {os.cpu_count()} cores"
    )
    for name, values in (
        ("all keys", lat),
        ("screen switches", out["switch"]),
        ("cursor moves", out["move"]),
    ):
        done = [x for x in values if x != float("inf")]  # type: ignore[attr-defined]
        missed = len(values) - len(done)  # type: ignore[arg-type]
        if done:
            print(
                f"  keystroke -> updated screen, {name} ({len(done)}"
                + (f", {missed} not answered" if missed else "")
                + f"): {_ms(done)}  (target p95 300 ms)"
            )
    firsts: list[float] = out["first_visits"]  # type: ignore[assignment]
    print(
        f"first visit of each screen (all {args.sessions} at once, untimed by the typing): "
        f"median {statistics.median(firsts) * 1000:.0f} ms, max {max(firsts) * 1000:.0f} ms"
    )
    print(f"disconnected during the run: {out['disconnected']}")
    zygote_pss = out["zygote_pss_mb"]
    print(
        f"memory per app process ({out['apps']} live): PSS median "
        f"{statistics.median(pss):.0f} MB, max {max(pss):.0f} MB; RSS median "
        f"{statistics.median(rss):.0f} MB  (target 120 MB); after typing PSS median "
        f"{statistics.median(out['pss_after_mb']):.0f} MB; server RSS "  # type: ignore[arg-type]
        f"{out['server_rss_mb']:.0f} MB"
        + (f", zygote PSS {zygote_pss:.0f} MB" if zygote_pss is not None else "")
    )
    cpu1 = os.times()
    print(
        f"benchmark: {time.perf_counter() - wall0:.0f} s wall; its own client CPU "
        f"{cpu1.user - cpu0.user + cpu1.system - cpu0.system:.1f} s"
    )


if __name__ == "__main__":
    main()
