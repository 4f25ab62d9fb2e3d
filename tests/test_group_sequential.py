"""Group-sequential boundaries (alpha spending), looks kept in the database, and the
mSPRT tuned to a planned size."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as st

from smart_suggest import stats
from smart_suggest import store as store_mod
from smart_suggest.analysis import analyze
from smart_suggest.analysis.groupseq import GroupDesign
from smart_suggest.errors import InputError
from smart_suggest.portability import export_all, import_all
from smart_suggest.store import Store, open_store
from tests.conftest import CliRunner
from tests.test_analysis import _make_experiment

# Jennison & Turnbull (2000), Table 2.1 (Pocock) and 2.3 (O'Brien-Fleming), alpha = 0.05.
POCOCK = {2: 2.178, 3: 2.289, 4: 2.361, 5: 2.413}
OBF_FINAL = {2: 1.977, 3: 2.004, 4: 2.024, 5: 2.040}


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_classical_designs_match_the_published_constants(k: int) -> None:
    assert stats.constant_boundaries(k)[0] == pytest.approx(POCOCK[k], abs=6e-4)
    obf = stats.obrien_fleming_boundaries(k)
    assert obf[-1] == pytest.approx(OBF_FINAL[k], abs=6e-4)
    assert obf[0] == pytest.approx(obf[-1] * math.sqrt(k), rel=1e-12)


def test_obf_spending_matches_ldbounds() -> None:
    # Lan-DeMets O'Brien-Fleming type, 5 equal looks, two-sided 0.05 (ldbounds / rpact).
    b = stats.group_boundaries([0.2, 0.4, 0.6, 0.8, 1.0], 0.05, "obf")
    assert b == pytest.approx([4.8769, 3.3569, 2.6803, 2.2898, 2.0310], abs=2e-4)


@pytest.mark.parametrize("spending", ["obf", "pocock"])
def test_spending_is_exact_by_independent_integration(spending: str) -> None:
    # P(cross by look k) from scipy's multivariate normal (Genz), corr = sqrt(t_i / t_j).
    times = [0.25, 0.45, 0.7, 1.0]
    b = stats.group_boundaries(times, 0.05, spending)
    for k in range(1, len(times) + 1):
        t = np.array(times[:k])
        cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
        mvn = st.multivariate_normal(np.zeros(k), cov, abseps=1e-7, releps=1e-7)
        inside = mvn.cdf(np.array(b[:k]), lower_limit=-np.array(b[:k]))
        assert 1.0 - inside == pytest.approx(stats.spent(times[k - 1], 0.05, spending), abs=3e-5)


def test_tuned_tau2_maximises_power_at_the_planned_size() -> None:
    r = stats.tuned_ratio(0.05)
    a = 2 * math.log(20)
    assert r == pytest.approx(a + math.log1p(r), rel=1e-14)

    def crit(x: float) -> float:  # mSPRT critical |z| at the plan for tau^2 = x V_plan
        return math.sqrt((1 + 1 / x) * (a + math.log1p(x)))

    best = optimize.minimize_scalar(crit, bounds=(0.01, 1000), method="bounded")
    assert r == pytest.approx(best.x, rel=1e-3)
    assert stats.tuned_tau2(4.0, 100, 400) == pytest.approx(r * 1.0)


def _conversion_experiment(store: Store, n: int, rates: tuple[float, float], seed: int) -> int:
    rng = np.random.default_rng(seed)
    assign, events = [], []
    for v, base, p in (("A", 1, rates[0]), ("B", 100_001, rates[1])):
        for i in range(n):
            u = base + i
            assign.append((u, v))
            events.append((v, u, "impression", None, 1.0))
            if rng.random() < p:
                events.append((v, u, "purchase", None, 2.0))
    return _make_experiment(
        store, f"conv-{seed}-{n}", assign, events, primary_metric="conversion_rate"
    )


def _add_users(store: Store, exp_id: int, n: int, start: int, rates: tuple[float, float]) -> None:
    rng = np.random.default_rng(start)
    rows_u, rows_a, rows_e = [], [], []
    for v, base, p in (("A", start, rates[0]), ("B", start + 50_000, rates[1])):
        for i in range(n):
            u = base + i
            rows_u.append((u, f"u{u}", 0.0))
            rows_a.append((exp_id, u, v, 0.0))
            rows_e.append((exp_id, v, u, "impression", None, 1.0))
            if rng.random() < p:
                rows_e.append((exp_id, v, u, "purchase", None, 2.0))
    with store.write() as conn:
        conn.executemany("INSERT INTO users(id, username, created_at) VALUES (?, ?, ?)", rows_u)
        conn.executemany(
            "INSERT INTO assignments(experiment_id, user_id, variant, assigned_at) "
            "VALUES (?, ?, ?, ?)",
            rows_a,
        )
        conn.executemany(
            "INSERT INTO events(experiment_id, variant, user_id, item_id, type, value, ts) "
            "VALUES (?, ?, ?, NULL, ?, ?, ?)",
            rows_e,
        )


def test_looks_are_recorded_and_continue_across_processes(store: Store, db_path: Path) -> None:
    rates = (0.10, 0.10)
    exp_id = _conversion_experiment(store, 400, rates, 1)
    design = GroupDesign(looks=3, spending="pocock", record=False)
    preview = analyze(store, exp_id, group=design, planned_units=1200)
    assert preview.group.status == "continue" and not preview.group.recorded
    assert store.conn.execute("SELECT count(*) FROM sequential_looks").fetchone()[0] == 0

    first = analyze(
        store,
        exp_id,
        group=GroupDesign(looks=3, spending="pocock", record=True),
        planned_units=1200,
    )
    look1 = first.group.look
    assert look1.look == 1 and look1.information == pytest.approx(400 / 1200)
    assert look1.boundary == pytest.approx(stats.group_boundaries([1 / 3], 0.05, "pocock")[0])
    assert first.mode == "group_sequential"
    # The primary metric's decision agrees with the boundary.
    assert first.primary.significant == (abs(look1.z) >= look1.boundary)

    # Another process records look 2 with the design read back from the database.
    _add_users(store, exp_id, 400, 200_000, rates)
    code = (
        "import sys; from smart_suggest.store import open_store; "
        "from smart_suggest.analysis import analyze; "
        "from smart_suggest.analysis.groupseq import GroupDesign; "
        "s = open_store(sys.argv[1]); "
        "a = analyze(s, int(sys.argv[2]), group=GroupDesign(record=True)); "
        "print(a.group.look.boundary)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(db_path), str(exp_id)],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = store.conn.execute(
        "SELECT look, information, boundary, alpha_spent, spending, planned_looks "
        "FROM sequential_looks WHERE experiment_id = ? ORDER BY look",
        (exp_id,),
    ).fetchall()
    assert [r[0] for r in rows] == [1, 2]
    assert rows[1][4:] == ("pocock", 3)
    expected = stats.group_boundaries([1 / 3, 2 / 3], 0.05, "pocock")
    assert float(out.stdout) == pytest.approx(expected[1], rel=1e-9)
    assert rows[1][3] == pytest.approx(stats.spent(2 / 3, 0.05, "pocock"))

    with pytest.raises(InputError, match="differs from the design fixed at look 1"):
        analyze(store, exp_id, group=GroupDesign(spending="obf"))
    with pytest.raises(InputError, match="no new information"):
        analyze(store, exp_id, group=GroupDesign(record=True))

    # Look 3 is the last planned one: it spends all the alpha.
    _add_users(store, exp_id, 300, 300_000, rates)
    last = analyze(store, exp_id, group=GroupDesign(record=True))
    assert last.group.look.final and last.group.look.alpha_spent == pytest.approx(0.05)
    with pytest.raises(InputError, match="ended at look"):
        analyze(store, exp_id, group=GroupDesign(record=True))


def test_schema_v9_applies_on_v4_alone_and_export_carries_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    with monkeypatch.context() as m:
        m.setattr(store_mod, "SCHEMA_VERSION", 4)
        open_store(path).close()
    s = open_store(path)
    assert s.conn.execute("PRAGMA user_version").fetchone()[0] == store_mod.SCHEMA_VERSION
    exp_id = _conversion_experiment(s, 300, (0.1, 0.12), 3)
    analyze(s, exp_id, group=GroupDesign(looks=4, record=True), planned_units=1000)
    before = s.conn.execute("SELECT * FROM sequential_looks").fetchall()
    export_all(s, tmp_path / "exp")
    s.close()
    t = open_store(tmp_path / "new.db")
    import_all(t, tmp_path / "exp")
    assert t.conn.execute("SELECT * FROM sequential_looks").fetchall() == before
    t.close()


def test_cli_group_sequential(store: Store, db_path: Path, run_cli: CliRunner) -> None:
    exp_id = _conversion_experiment(store, 300, (0.1, 0.1), 4)
    args = ("analyze", str(exp_id), "--db", db_path, "--sequential", "group")
    code, out, err = run_cli(*args, "--looks", "5", "--planned-users", "3000", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["mode"] == "group_sequential" and data["group"]["recorded"] is False
    code, out, err = run_cli(*args, "--looks", "5", "--planned-users", "3000", "--record-look")
    assert code == 0, err
    assert "look 1 of 5 (recorded)" in " ".join(out.split())
    for bad, word in (
        (("--spending", "linear"), "--spending"),
        (("--looks", "0"), "--looks"),
        (("--looks", "6"), "differs from the design"),
    ):
        code, out, err = run_cli(*args, *bad)
        assert code == 2 and out == "" and word in err and err.count("\n") == 1
    code, _, err = run_cli("analyze", str(exp_id), "--db", db_path, "--record-look")
    assert code == 2 and "--sequential group" in err
    # Plain --sequential still means the mSPRT, and --planned-users tunes its tau^2.
    code, out, err = run_cli(
        "analyze",
        str(exp_id),
        "--db",
        db_path,
        "--sequential",
        "--planned-users",
        "3000",
        "--json",
    )
    assert code == 0, err
    seq = json.loads(out)["sequential"]
    assert "tuned for power at the planned 3,000" in seq["tau2_basis"]


def _simulate(lift: float, sims: int, seed: int) -> dict[str, float]:
    """Conversion at 10%, 14 equal looks up to the planned size for +5% at 80% power."""
    p0, alpha, looks = 0.10, 0.05, 14
    n_plan = stats.sample_size_proportions(p0, 0.05, relative=True).n_per_variant
    sizes = [round(n_plan * (k + 1) / looks) for k in range(looks)]
    bounds = stats.group_boundaries([s / n_plan for s in sizes], alpha, "obf")
    tau2 = stats.tuned_tau2(2 * p0 * (1 - p0) / n_plan, n_plan, n_plan, alpha)
    rng = np.random.default_rng(seed)
    xa, xb, prev = np.zeros(sims), np.zeros(sims), 0
    rej = {k: np.zeros(sims, bool) for k in ("fixed", "obf", "msprt")}
    for k, n in enumerate(sizes):
        xa += rng.binomial(n - prev, p0, sims)
        xb += rng.binomial(n - prev, p0 * (1 + lift), sims)
        prev = n
        var = (xa / n * (1 - xa / n) + xb / n * (1 - xb / n)) / n
        z = (xb - xa) / n / np.sqrt(var)
        rej["obf"] |= np.abs(z) >= bounds[k]
        shrink = tau2 / (var + tau2)
        rej["msprt"] |= 0.5 * np.log(1 - shrink) + 0.5 * z * z * shrink >= math.log(1 / alpha)
    rej["fixed"] = np.abs(z) >= st.norm.isf(alpha / 2)
    return {k: float(v.mean()) for k, v in rej.items()}


def test_reduced_calibration_fourteen_looks() -> None:
    # benchmarks/bench_sequential.py runs 100,000 of each; 6,000 here (MC SE 0.28 pts).
    null = _simulate(0.0, 6000, 11)
    alt = _simulate(0.05, 6000, 12)
    assert 0.035 <= null["obf"] <= 0.062
    assert null["msprt"] <= 0.05 + 0.008  # always valid, conservative at discrete looks
    assert alt["obf"] >= 0.8 * alt["fixed"]


def test_an_export_from_before_the_looks_table_still_imports(store: Store, tmp_path: Path) -> None:
    _conversion_experiment(store, 50, (0.1, 0.1), 9)
    export_all(store, tmp_path / "old")
    manifest_path = tmp_path / "old" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["schema_version"] = 8  # the schema before sequential_looks
    (tmp_path / "old" / manifest["tables"].pop("sequential_looks")["file"]).unlink()
    manifest_path.write_text(json.dumps(manifest))
    t = open_store(tmp_path / "new.db")
    import_all(t, tmp_path / "old")
    assert t.conn.execute("SELECT count(*) FROM sequential_looks").fetchone()[0] == 0
    assert t.conn.execute("SELECT count(*) FROM assignments").fetchone()[0] == 100
    t.close()


def test_group_needs_the_local_database(run_cli: CliRunner, tmp_path: Path) -> None:
    summary = tmp_path / "s.json"
    summary.write_text("[]")
    code, out, err = run_cli(
        "analyze", "--summary", summary, "--sequential", "group", "--db", tmp_path / "x.db"
    )
    assert code == 2 and out == "" and "local database" in err and err.count("\n") == 1
    code, _, err = run_cli(
        "analyze", "--summary", summary, "--sequential=weekly", "--db", tmp_path / "x.db"
    )
    assert code == 2 and "msprt or group" in err
