"""One trace of one eventfixture round, per Go toolchain, against the fixture's truth.

The trace runs as a user runs it: `sideeye-tui trace PID --spec FILE --json -o DB`,
started before the round (the test waits until the probes' breakpoints are in the
target's code and the first --json line is out), ended with SIGINT after the round.
Every test of this module reads that one run: exact hit counts, every captured value,
durations between the call's sleep and its caller's measure, recursion, panic, stack
growth, generic, inlined and line probes, goroutine ids, the --json stream's totals.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from .support import (
    TOOLCHAIN_BUILDS,
    Code,
    capture_rows,
    code_of,
    connect,
    fixture_binary,
    log2_bucket,
    probe_ids,
    rows,
    run_round,
    start_eventfixture,
    tracing,
    wait_code_restored,
    wait_probes_in,
    write_spec,
)

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go, pytest.mark.slow]

# A traced duration lies in [the call's sleep, its caller's measure]; the clocks are
# both CLOCK_MONOTONIC, read at slightly different instants.
MARGIN_NS = 200_000

HANDLE_CAPTURE = ["req.ID", "req.AccountID", "req.User.Name", "name", "n", "tags"]
HANDLE_RETURN = ["~r0", "~r1"]
FUNCTIONS = [
    "main.handle",
    "main.recurse",
    "main.mayPanic",
    "main.growStack",
    "main.sumOf[...]",
    "main.small",
]


@dataclass
class Run:
    build: str
    ready: dict[str, Any]
    truth: dict[str, Any]
    code: Code
    db: Path
    rc: int
    json: list[dict[str, Any]]
    stderr: list[str]
    restored: list[int]  # addresses of the target's code still differing after the end
    alive: bool
    loop_loc: str
    sub_loc: str

    def con(self) -> duckdb.DuckDBPyConnection:
        return connect(self.db)


@pytest.fixture(scope="module", params=TOOLCHAIN_BUILDS)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    build: str = request.param
    tmp = tmp_path_factory.mktemp(f"events-{build}")
    truth_path = tmp / "truth.json"
    with start_eventfixture(build, truth_path) as fx:
        ready = fx.report
        lines = ready["lines"]
        loop_loc = f"eventfixture/workload.go:{lines['loop']['line']}"
        sub_loc = f"sub/workload.go:{lines['sub']['line']}"
        spec = write_spec(
            tmp / "events.toml",
            {
                "main.handle": {"capture": HANDLE_CAPTURE, "on_return": HANDLE_RETURN},
                "main.recurse": {"capture": ["n"], "on_return": ["~r0"]},
                "main.mayPanic": {"capture": ["n"]},
                "main.growStack": {"capture": ["levels"], "on_return": ["~r0"]},
                "main.sumOf[...]": {"capture": ["xs"]},
                "main.small": {},
                loop_loc: {},
                sub_loc: {},
            },
        )
        code = code_of(fixture_binary(build))
        db = tmp / "trace.duckdb"
        with tracing([fx.pid], db, "--spec", str(spec), "--json") as tr:
            wait_probes_in(
                fx.pid,
                code,
                ["main.handle", "main.recurse", "main.callSmall", "main.loopLines"],
                tr.proc,
            )
            tr.wait_json("probe")
            truth = run_round(fx, truth_path, 1)
            # A second of aggregates read after the round: the stream has it all.
            tr.wait_json("probe", timeout=30, after=truth["ended_unix_ns"] / 1e9 + 1.0)
            rc = tr.stop()
            restored = wait_code_restored(fx.pid, code)
            yield Run(
                build=build,
                ready=ready,
                truth=truth,
                code=code,
                db=db,
                rc=rc,
                json=tr.json_lines(),
                stderr=tr.stderr_lines(),
                restored=restored,
                alive=fx.proc.poll() is None,
                loop_loc=loop_loc,
                sub_loc=sub_loc,
            )


def trace_id(con: duckdb.DuckDBPyConnection) -> int:
    ids = [r[0] for r in con.execute("SELECT trace_id FROM traces").fetchall()]
    assert len(ids) == 1, ids
    return int(ids[0])


# Every column but ts (a TIMESTAMPTZ: Python needs pytz to fetch it; ts_ns is the same).
EVENT_COLUMNS = (
    "trace_id, event_id, probe_id, pid, tid, goid, ts_ns, kind, duration_ns, "
    "entry_event_id, stack_id, inlined"
)


def events_of(con: duckdb.DuckDBPyConnection, tid: int, probe: int) -> list[dict[str, Any]]:
    return rows(
        con,
        f"SELECT {EVENT_COLUMNS} FROM events WHERE trace_id = ? AND probe_id = ? "
        "ORDER BY ts_ns, event_id",
        tid,
        probe,
    )


def calls(run: Run, function: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = run.truth["functions"][function]
    return out


def returned(run: Run, function: str) -> list[dict[str, Any]]:
    return [c for c in calls(run, function) if c["returned"]]


def check_durations(events: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Return events, in order, against the calls that returned, in call order."""
    got = [e["duration_ns"] for e in events if e["kind"] == "return"]
    assert len(got) == len(expected)
    for d, c in zip(got, expected, strict=True):
        assert d is not None
        assert c["sleep_ns"] <= d <= c["measured_ns"] + MARGIN_NS, (d, c)


# ---- the run as a whole ------------------------------------------------------------


def test_trace_ends_cleanly(run: Run) -> None:
    assert run.rc == 0, run.stderr
    assert not any("Traceback" in line for line in run.stderr)
    assert len(run.stderr) == 1, f"one summary line on stderr: {run.stderr}"
    assert run.alive, "the target died"
    assert run.restored == [], f"breakpoints left at {[hex(a) for a in run.restored[:8]]}"
    with run.con() as con:
        tid = trace_id(con)
        t = rows(
            con,
            "SELECT end_reason, hostname, tool_version, epoch_ns(started) AS started, "
            "epoch_ns(ended) AS ended FROM traces WHERE trace_id = ?",
            tid,
        )[0]
    assert t["end_reason"] == "interrupted"
    assert t["hostname"] == socket.gethostname()
    assert t["tool_version"]
    assert t["started"] <= run.truth["started_unix_ns"]
    assert t["ended"] >= run.truth["ended_unix_ns"]


def test_probes_placed(run: Run) -> None:
    with run.con() as con:
        tid = trace_id(con)
        got = {r["location"]: r for r in rows(con, "SELECT * FROM probes WHERE trace_id = ?", tid)}
    assert set(got) == {*FUNCTIONS, run.loop_loc, run.sub_loc}
    for loc, p in got.items():
        assert p["error"] is None, (loc, p["error"])
        assert p["pid"] == run.truth["pid"]
        assert p["pcs"] is not None and p["pcs"] >= 1, p
        assert p["kind"] == ("line" if loc in (run.loop_loc, run.sub_loc) else "function")
    assert got["main.handle"]["function"] == "main.handle"
    # Two instantiations: two entries at least, and each has its return(s).
    assert got["main.sumOf[...]"]["pcs"] >= 4
    loop = got[run.loop_loc]
    assert loop["function"] == "main.loopLines"
    assert loop["file"] == run.ready["lines"]["loop"]["file"]
    assert loop["line"] == run.ready["lines"]["loop"]["line"]
    assert got[run.sub_loc]["function"] == "example.com/eventfixture/sub.Twice"


def test_nothing_dropped(run: Run) -> None:
    with run.con() as con:
        tid = trace_id(con)
        dropped = con.execute(
            "SELECT coalesce(sum(dropped), 0) FROM probe_rates WHERE trace_id = ?", [tid]
        ).fetchone()
    assert dropped == (0,)


# ---- exact counts ------------------------------------------------------------------


def test_hit_counts_exact(run: Run) -> None:
    """probe_rates.hits (counted in BPF) and the events rows equal the fixture's calls."""
    with run.con() as con:
        tid = trace_id(con)
        ids = probe_ids(con, tid)
        hits = dict(
            con.execute(
                "SELECT probe_id, sum(hits) FROM probe_rates WHERE trace_id = ? GROUP BY 1",
                [tid],
            ).fetchall()
        )
        kinds = {
            (r["probe_id"], r["kind"]): r["n"]
            for r in rows(
                con,
                "SELECT probe_id, kind, count(*) AS n FROM events WHERE trace_id = ? GROUP BY 1, 2",
                tid,
            )
        }
    for f in FUNCTIONS:
        n = len(calls(run, f))
        assert hits.get(ids[f]) == n, (f, hits.get(ids[f]), n)
        assert kinds.get((ids[f], "entry")) == n, f
        ret = 0 if f == "main.small" else len(returned(run, f))
        assert kinds.get((ids[f], "return"), 0) == ret, f
    for name, loc in (("loop", run.loop_loc), ("sub", run.sub_loc)):
        n = run.truth["lines"][name]["count"]
        assert hits.get(ids[loc]) == n, (loc, hits.get(ids[loc]), n)
        assert kinds.get((ids[loc], "line")) == n, loc
    assert {k for _, k in kinds} <= {"entry", "return", "line"}


def test_events_during_the_round(run: Run) -> None:
    lo, hi = run.truth["started_unix_ns"], run.truth["ended_unix_ns"]
    with run.con() as con:
        tid = trace_id(con)
        got = rows(
            con,
            "SELECT ts_ns, epoch_ns(ts) AS ts, pid, tid FROM events WHERE trace_id = ?",
            tid,
        )
    assert got
    for e in got:
        assert lo - 5_000_000 <= e["ts_ns"] <= hi + 5_000_000, e
        assert 0 <= e["ts_ns"] - e["ts"] < 1_000, e  # a TIMESTAMPTZ keeps microseconds
        assert e["pid"] == run.truth["pid"]
        assert e["tid"] is not None and e["tid"] > 0


def test_goids_are_the_fixtures(run: Run) -> None:
    with run.con() as con:
        tid = trace_id(con)
        ids = probe_ids(con, tid)
        by_probe: dict[int, Counter[int]] = {}
        for r in rows(con, "SELECT probe_id, goid FROM events WHERE trace_id = ?", tid):
            by_probe.setdefault(r["probe_id"], Counter())[r["goid"]] += 1
    for f in FUNCTIONS:
        want: Counter[int] = Counter()
        for c in calls(run, f):
            want[c["goid"]] += 1 if f == "main.small" or not c["returned"] else 2
        assert by_probe[ids[f]] == want, f
    for name, loc in (("loop", run.loop_loc), ("sub", run.sub_loc)):
        line = run.truth["lines"][name]
        assert by_probe[ids[loc]] == Counter({line["goid"]: line["count"]}), loc


# ---- values ------------------------------------------------------------------------


def test_handle_values(run: Run) -> None:
    with run.con() as con:
        tid = trace_id(con)
        entry = capture_rows(con, "main.handle@entry", tid)
        ret = capture_rows(con, "main.handle@return", tid)
        errors = rows(con, "SELECT * FROM event_capture_errors WHERE trace_id = ?", tid)
    truth = calls(run, "main.handle")
    assert len(entry) == len(truth) and len(ret) == len(truth)
    for row, c in zip(entry, truth, strict=True):
        a = c["args"]
        user = a["req"]["User"]
        want = {
            "req.ID": a["req"]["ID"],
            "req.AccountID": a["req"]["AccountID"],
            "req.User.Name": None if user is None else user["Name"],
            "name": a["name"],
            "n": a["n"],
            "tags": a["tags"],
        }
        assert {k: row[k] for k in want} == want
        assert row["goid"] == c["goid"] and row["pid"] == run.truth["pid"]
        assert row["$kind"] == "entry"
    for row, c in zip(ret, truth, strict=True):
        assert row["~r0"] == c["results"]["~r0"]
        assert row["~r1"] == c["results"]["~r1"]
        assert row["$kind"] == "return"
    # Every value above was available: no NULL needs a reason, but req.User.Name
    # through a nil pointer is null (as in snapshots), with or without one.
    unexplained = [e for e in errors if e["expression"] not in ("req.User.Name",)]
    handle_events = {r["event_id"] for r in entry + ret}
    assert [e for e in unexplained if e["event_id"] in handle_events] == []


def test_handle_return_pairs_with_its_entry(run: Run) -> None:
    with run.con() as con:
        tid = trace_id(con)
        ev = events_of(con, tid, probe_ids(con, tid)["main.handle"])
    entries = {e["event_id"]: e for e in ev if e["kind"] == "entry"}
    rets = [e for e in ev if e["kind"] == "return"]
    assert sorted(r["entry_event_id"] for r in rets) == sorted(entries)
    for r in rets:
        e = entries[r["entry_event_id"]]
        assert e["goid"] == r["goid"] and e["ts_ns"] < r["ts_ns"]
        assert abs(r["duration_ns"] - (r["ts_ns"] - e["ts_ns"])) < 2_000
        assert e["duration_ns"] is None and e["inlined"] is False
    check_durations(ev, returned(run, "main.handle"))


def test_recursion_pairs_each_level(run: Run) -> None:
    """Each return is paired with its own level's entry: level n's call contains level
    n-1's, so its duration is at least level n-1's measured one, and at most its own.
    Entries come outermost first (recurse(50) first), returns innermost first."""
    with run.con() as con:
        tid = trace_id(con)
        ev = events_of(con, tid, probe_ids(con, tid)["main.recurse"])
    truth = {c["args"]["n"]: c for c in calls(run, "main.recurse")}
    depth = max(truth)
    entries = [e for e in ev if e["kind"] == "entry"]
    assert len(entries) == depth
    level = {e["event_id"]: depth - k for k, e in enumerate(entries)}
    rets = [e for e in ev if e["kind"] == "return"]
    assert [level[r["entry_event_id"]] for r in rets] == list(range(1, depth + 1))
    durations = {level[r["entry_event_id"]]: r["duration_ns"] for r in rets}
    for n, d in durations.items():
        low = truth[n - 1]["measured_ns"] if n > 1 else truth[n]["sleep_ns"]
        assert low <= d <= truth[n]["measured_ns"] + MARGIN_NS, (n, d, truth[n])
    ordered = [durations[n] for n in sorted(durations)]
    assert ordered == sorted(ordered) and len(set(ordered)) == len(ordered)


def test_recursion_values(run: Run) -> None:
    with run.con() as con:
        tid = trace_id(con)
        level = {r["event_id"]: r["n"] for r in capture_rows(con, "main.recurse@entry", tid)}
        results = {r["event_id"]: r["~r0"] for r in capture_rows(con, "main.recurse@return", tid)}
        ev = events_of(con, tid, probe_ids(con, tid)["main.recurse"])
    truth = calls(run, "main.recurse")
    entries = [e for e in ev if e["kind"] == "entry"]
    assert [level[e["event_id"]] for e in entries] == [c["args"]["n"] for c in reversed(truth)]
    for r in ev:
        if r["kind"] == "return":
            assert results[r["event_id"]] == level[r["entry_event_id"]]


def test_panic_leaves_unpaired_entries(run: Run) -> None:
    """Entries in call order are n = 0..5; only the calls that did not panic return,
    each paired with its own entry (a return paired with the stale entry of a panicked
    call would last more than 5 ms)."""
    with run.con() as con:
        tid = trace_id(con)
        ev = events_of(con, tid, probe_ids(con, tid)["main.mayPanic"])
    truth = calls(run, "main.mayPanic")
    entries = [e for e in ev if e["kind"] == "entry"]
    rets = [e for e in ev if e["kind"] == "return"]
    assert len(entries) == len(truth)
    n_of = {e["event_id"]: c["args"]["n"] for e, c in zip(entries, truth, strict=True)}
    paired = {r["entry_event_id"] for r in rets}
    unpaired = [n_of[e["event_id"]] for e in entries if e["event_id"] not in paired]
    assert unpaired == [c["args"]["n"] for c in truth if not c["returned"]]
    assert [n_of[r["entry_event_id"]] for r in rets] == [
        c["args"]["n"] for c in truth if c["returned"]
    ]
    check_durations(ev, returned(run, "main.mayPanic"))


def test_panic_values(run: Run) -> None:
    with run.con() as con:
        tid = trace_id(con)
        got = [r["n"] for r in capture_rows(con, "main.mayPanic@entry", tid)]
    assert got == [c["args"]["n"] for c in calls(run, "main.mayPanic")]


def test_stack_growth_keeps_pairing(run: Run) -> None:
    truth = calls(run, "main.growStack")
    assert all(c["stack_moved"] for c in truth), "the fixture's stacks did not move"
    with run.con() as con:
        tid = trace_id(con)
        ev = events_of(con, tid, probe_ids(con, tid)["main.growStack"])
    entries = {e["event_id"]: e for e in ev if e["kind"] == "entry"}
    rets = [e for e in ev if e["kind"] == "return"]
    assert [r["goid"] for r in rets] == [c["goid"] for c in truth]
    for r in rets:
        assert entries[r["entry_event_id"]]["goid"] == r["goid"]
    check_durations(ev, truth)


def test_stack_growth_values(run: Run) -> None:
    truth = calls(run, "main.growStack")
    with run.con() as con:
        tid = trace_id(con)
        levels = [r["levels"] for r in capture_rows(con, "main.growStack@entry", tid)]
        moved = [r["~r0"] for r in capture_rows(con, "main.growStack@return", tid)]
    assert levels == [c["args"]["levels"] for c in truth]
    assert moved == [c["results"]["~r0"] for c in truth] == [True] * len(truth)


def test_generic_both_instantiations(run: Run) -> None:
    with run.con() as con:
        tid = trace_id(con)
        probe = probe_ids(con, tid)["main.sumOf[...]"]
        ev = events_of(con, tid, probe)
        top = {
            r["stack_id"]: r
            for r in rows(
                con,
                "SELECT s.stack_id, s.function, s.pc FROM event_stacks s "
                "WHERE s.trace_id = ? AND s.depth = 0",
                tid,
            )
        }
    truth = calls(run, "main.sumOf[...]")
    entries = [e for e in ev if e["kind"] == "entry"]
    got = [run.code.symbol_at(top[e["stack_id"]]["pc"]) for e in entries]
    assert got == [c["instantiation"] for c in truth]
    assert {top[e["stack_id"]]["function"] for e in entries} == {"main.sumOf[...]"}
    check_durations(ev, truth)


def test_generic_values(run: Run) -> None:
    with run.con() as con:
        xs = [r["xs"] for r in capture_rows(con, "main.sumOf[...]@entry", trace_id(con))]
    assert xs == [c["args"]["xs"] for c in calls(run, "main.sumOf[...]")]


def test_inlined_entries(run: Run) -> None:
    with run.con() as con:
        tid = trace_id(con)
        ev = events_of(con, tid, probe_ids(con, tid)["main.small"])
        stacks = rows(
            con,
            "SELECT stack_id, depth, function, inlined FROM event_stacks "
            "WHERE trace_id = ? AND depth < 2 ORDER BY stack_id, depth",
            tid,
        )
    assert run.ready["inlined"] == {"main.small": True}
    assert len(ev) == len(calls(run, "main.small"))
    assert all(e["kind"] == "entry" and e["inlined"] is True for e in ev)
    assert all(e["duration_ns"] is None for e in ev)
    frames: dict[int, list[tuple[str, bool]]] = {}
    for s in stacks:
        frames.setdefault(s["stack_id"], []).append((s["function"], s["inlined"]))
    for e in ev:
        assert frames[e["stack_id"]] == [("main.small", True), ("main.callSmall", False)]


def test_line_probes(run: Run) -> None:
    with run.con() as con:
        tid = trace_id(con)
        ids = probe_ids(con, tid)
        loop = events_of(con, tid, ids[run.loop_loc])
        top = dict(
            con.execute(
                "SELECT stack_id, line FROM event_stacks WHERE trace_id = ? AND depth = 0",
                [tid],
            ).fetchall()
        )
    assert len(loop) == run.truth["lines"]["loop"]["count"]
    assert all(e["kind"] == "line" and e["duration_ns"] is None for e in loop)
    assert {top[e["stack_id"]] for e in loop} == {run.ready["lines"]["loop"]["line"]}


def test_backtraces(run: Run) -> None:
    """Every event has its stack; a handle event's stack is main.handle called from the
    fixture's goroutine, stored once for all the calls from the same place."""
    with run.con() as con:
        tid = trace_id(con)
        missing = con.execute(
            "SELECT count(*) FROM events e WHERE trace_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM event_stacks s WHERE s.trace_id = e.trace_id "
            "AND s.stack_id = e.stack_id)",
            [tid],
        ).fetchone()
        dup = con.execute(
            "SELECT count(*) FROM (SELECT stack_id, depth FROM event_stacks "
            "WHERE trace_id = ? GROUP BY 1, 2 HAVING count(*) > 1)",
            [tid],
        ).fetchone()
        ev = events_of(con, tid, probe_ids(con, tid)["main.handle"])
        entry_stacks = {e["stack_id"] for e in ev if e["kind"] == "entry"}
        funcs = [
            r["function"]
            for r in rows(
                con,
                "SELECT function FROM event_stacks WHERE trace_id = ? AND stack_id = ? "
                "ORDER BY depth",
                tid,
                next(iter(entry_stacks)),
            )
        ]
    assert missing == (0,) and dup == (0,)
    assert len(entry_stacks) == 1, "ten calls from one call site: one stack"
    assert funcs[:3] == ["main.handle", "main.runHandles.func1", "main.inGoroutine.func1"]


def test_duration_histograms(run: Run) -> None:
    """probe_durations (aggregated in BPF) hold one count per return, in the bucket of
    that return's duration."""
    with run.con() as con:
        tid = trace_id(con)
        ids = probe_ids(con, tid)
        for f in FUNCTIONS:
            hist = Counter(
                {
                    b: n
                    for b, n in con.execute(
                        "SELECT bucket, sum(count) FROM probe_durations "
                        "WHERE trace_id = ? AND probe_id = ? GROUP BY 1",
                        [tid, ids[f]],
                    ).fetchall()
                    if n
                }
            )
            ev = events_of(con, tid, ids[f])
            want = Counter(log2_bucket(e["duration_ns"]) for e in ev if e["kind"] == "return")
            assert hist == want, f


# ---- the --json stream ---------------------------------------------------------------


def test_json_stream_matches_tables(run: Run) -> None:
    probes = [o for o in run.json if o["type"] == "probe"]
    ends = [o for o in run.json if o["type"] == "end"]
    assert len(ends) == 1 and run.json[-1] is ends[0]
    with run.con() as con:
        tid = trace_id(con)
        ids = probe_ids(con, tid)
        sums = {
            r["probe_id"]: r
            for r in rows(
                con,
                "SELECT probe_id, sum(hits) AS hits, sum(kept) AS kept, sum(dropped) AS dropped "
                "FROM probe_rates WHERE trace_id = ? GROUP BY 1",
                tid,
            )
        }
        kept = con.execute("SELECT count(*) FROM events WHERE trace_id = ?", [tid]).fetchone()
    assert ends[0]["trace_id"] == tid and ends[0]["reason"] == "interrupted"
    assert kept is not None and ends[0]["events_kept"] == kept[0]
    assert ends[0]["events_dropped"] == sum(r["dropped"] for r in sums.values())
    for loc, pid in ids.items():
        mine = [o for o in probes if o["probe_id"] == pid]
        assert mine, loc
        assert {o["location"] for o in mine} == {loc}
        assert {o["pid"] for o in mine} == {run.truth["pid"]}
        lines = (run.loop_loc, run.sub_loc)
        assert {o["kind"] for o in mine} == {"line" if loc in lines else "function"}
        ts = [o["t"] for o in mine]
        assert ts == sorted(ts)
        last = mine[-1]
        assert sum(o["hits"] for o in mine) == last["hits_total"] == sums[pid]["hits"], loc
        assert last["kept_total"] == sums[pid]["kept"], loc
        assert last["dropped_total"] == sums[pid]["dropped"], loc
        durations: Counter[int] = Counter()
        for o in mine:
            durations.update({int(b): n for b, n in o["durations"].items()})
        hist = dict(con_durations(run.db, tid, pid))
        assert {b: n for b, n in durations.items() if n} == hist, loc


def con_durations(db: Path, tid: int, probe: int) -> list[tuple[int, int]]:
    with connect(db) as con:
        got = con.execute(
            "SELECT bucket, sum(count) FROM probe_durations WHERE trace_id = ? AND probe_id = ? "
            "GROUP BY 1 HAVING sum(count) > 0",
            [tid, probe],
        ).fetchall()
    return [(int(b), int(n)) for b, n in got]
