"""`trace` options against the fixture's truth: --probe and --for with the live display,
`when` conditions, --max-events-per-s, and a stripped binary (function and line probes
from the pclntab; values need DWARF)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .support import (
    CLI,
    code_of,
    connect,
    fixture_binary,
    probe_ids,
    rows,
    run_round,
    start_eventfixture,
    tracing,
    unstripped_twin,
    wait_code_restored,
    wait_probes_in,
    write_spec,
)

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go, pytest.mark.slow]


def test_probe_flags_and_for(tmp_path: Path) -> None:
    """--probe for a function and a line, --for, the live display: ends by itself with
    reason 'duration', exact counts, one summary line."""
    truth_path = tmp_path / "truth.json"
    code = code_of(fixture_binary("local"))
    db = tmp_path / "t.duckdb"
    with start_eventfixture("local", truth_path) as fx:
        loop = f"eventfixture/workload.go:{fx.report['lines']['loop']['line']}"
        started = time.monotonic()
        with tracing([fx.pid], db, "--probe", "main.handle", "--probe", loop, "--for", "25s") as tr:
            wait_probes_in(fx.pid, code, ["main.handle", "main.loopLines"], tr.proc)
            assert time.monotonic() - started < 20, "attaching took most of --for"
            truth = run_round(fx, truth_path, 1)
            rc = tr.wait(timeout=90)
            assert rc == 0, tr.stderr_lines()
            assert time.monotonic() - started >= 25
            assert len(tr.stderr_lines()) == 1, tr.stderr_lines()
            assert tr.stdout.strip(), "no live display"
        assert wait_code_restored(fx.pid, code) == []
    with connect(db) as con:
        assert rows(con, "SELECT end_reason FROM traces") == [{"end_reason": "duration"}]
        ids = probe_ids(con, 1)
        hits = dict(
            con.execute("SELECT probe_id, sum(hits) FROM probe_rates GROUP BY 1").fetchall()
        )
        kinds = dict(
            con.execute(
                "SELECT kind, count(*) FROM events WHERE probe_id = ? GROUP BY 1",
                [ids["main.handle"]],
            ).fetchall()
        )
        lines = con.execute(
            "SELECT count(*) FROM events WHERE probe_id = ? AND kind = 'line'", [ids[loop]]
        ).fetchone()
    n = len(truth["functions"]["main.handle"])
    assert hits == {ids["main.handle"]: n, ids[loop]: truth["lines"]["loop"]["count"]}
    assert kinds == {"entry": n, "return": n}
    assert lines == (truth["lines"]["loop"]["count"],)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("req.AccountID == 7", lambda a: a["req"]["AccountID"] == 7),
        ('name == "call-3" || n > 40', lambda a: a["name"] == "call-3" or a["n"] > 40),
        ("n >= 0 && n < 30", lambda a: 0 <= a["n"] < 30),
        (
            'name != "call-1" && req.ID <= 102',
            lambda a: a["name"] != "call-1" and a["req"]["ID"] <= 102,
        ),
    ],
)
def test_when_condition(
    tmp_path: Path, when: str, expected: Callable[[dict[str, Any]], bool]
) -> None:
    """Only the calls the condition holds for produce events (entry and return)."""
    truth_path = tmp_path / "truth.json"
    code = code_of(fixture_binary("local"))
    spec = write_spec(
        tmp_path / "s.toml",
        {
            "main.handle": {
                "capture": ["req.ID", "req.AccountID", "name", "n"],
                "when": when,
                "on_return": ["~r0"],
            }
        },
    )
    db = tmp_path / "t.duckdb"
    with (
        start_eventfixture("local", truth_path) as fx,
        tracing([fx.pid], db, "--spec", str(spec), "--json") as tr,
    ):
        wait_probes_in(fx.pid, code, ["main.handle"], tr.proc)
        tr.wait_json("probe")
        truth = run_round(fx, truth_path, 1)
        assert tr.stop() == 0, tr.stderr_lines()
    chosen = [c for c in truth["functions"]["main.handle"] if expected(c["args"])]
    assert 0 < len(chosen) < len(truth["functions"]["main.handle"]), "a useless case"
    with connect(db) as con:
        entry = rows(
            con,
            'SELECT c."n", c."name", e.goid FROM "main.handle@entry" c '
            "JOIN events e USING (trace_id, event_id) ORDER BY e.ts_ns",
        )
        returns = rows(
            con,
            'SELECT c."~r0" FROM "main.handle@return" c JOIN events e USING (trace_id, event_id) '
            "ORDER BY e.ts_ns",
        )
    assert [(r["n"], r["name"]) for r in entry] == [
        (c["args"]["n"], c["args"]["name"]) for c in chosen
    ]
    assert [r["~r0"] for r in returns] == [c["results"]["~r0"] for c in chosen]


def test_max_events_per_s(tmp_path: Path) -> None:
    """Kept events are capped; hits stay exact; every hit is kept or dropped, counted."""
    truth_path = tmp_path / "truth.json"
    code = code_of(fixture_binary("local"))
    db = tmp_path / "t.duckdb"
    cap = 10
    with start_eventfixture("local", truth_path) as fx:
        loop = f"eventfixture/workload.go:{fx.report['lines']['loop']['line']}"
        with tracing([fx.pid], db, "--probe", loop, "--json", "--max-events-per-s", str(cap)) as tr:
            wait_probes_in(fx.pid, code, ["main.loopLines"], tr.proc)
            tr.wait_json("probe")
            truth = run_round(fx, truth_path, 1)
            tr.wait_json("probe", timeout=30, after=truth["ended_unix_ns"] / 1e9 + 1.0)
            assert tr.stop() == 0, tr.stderr_lines()
            end = tr.json_lines()[-1]
    n = truth["lines"]["loop"]["count"]
    assert n > cap
    with connect(db) as con:
        per_s = rows(
            con,
            "SELECT epoch_ns(second) AS second, hits, kept, dropped FROM probe_rates ORDER BY 1",
        )
        kept = con.execute("SELECT count(*) FROM events").fetchone()
    assert sum(r["hits"] for r in per_s) == n
    assert sum(r["kept"] for r in per_s) + sum(r["dropped"] for r in per_s) == n
    assert all(r["kept"] <= cap for r in per_s), per_s
    assert sum(r["dropped"] for r in per_s) >= n - 2 * cap  # the round may span two seconds
    assert kept == (sum(r["kept"] for r in per_s),)
    assert end["events_kept"] == kept[0]
    assert end["events_dropped"] == sum(r["dropped"] for r in per_s)


def test_stripped_binary(tmp_path: Path) -> None:
    """Without symbols or DWARF, function and line probes still count exactly; a value
    is NULL with a reason naming the missing DWARF (or the capture is refused with a
    warning saying so)."""
    truth_path = tmp_path / "truth.json"
    code = code_of(unstripped_twin("local-stripped"))
    db = tmp_path / "t.duckdb"
    with start_eventfixture("local-stripped", truth_path) as fx:
        loop = f"eventfixture/workload.go:{fx.report['lines']['loop']['line']}"
        spec = write_spec(tmp_path / "s.toml", {"main.handle": {"capture": ["n"]}, loop: {}})
        with tracing([fx.pid], db, "--spec", str(spec), "--json") as tr:
            wait_probes_in(fx.pid, code, ["main.handle", "main.loopLines"], tr.proc)
            tr.wait_json("probe")
            truth = run_round(fx, truth_path, 1)
            tr.wait_json("probe", timeout=30, after=truth["ended_unix_ns"] / 1e9 + 1.0)
            assert tr.stop() == 0, tr.stderr_lines()
            stderr = "\n".join(tr.stderr_lines())
    n = len(truth["functions"]["main.handle"])
    with connect(db) as con:
        ids = probe_ids(con, 1)
        hits = dict(
            con.execute("SELECT probe_id, sum(hits) FROM probe_rates GROUP BY 1").fetchall()
        )
        assert hits == {ids["main.handle"]: n, ids[loop]: truth["lines"]["loop"]["count"]}
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        if "main.handle@entry" in tables:
            vals = rows(con, 'SELECT "n" FROM "main.handle@entry"')
            assert len(vals) == n and all(v["n"] is None for v in vals)
            reasons = rows(con, "SELECT reason FROM event_capture_errors WHERE expression = 'n'")
            assert len(reasons) == n and all("DWARF" in r["reason"] for r in reasons), reasons
        else:
            assert "DWARF" in stderr, stderr
    assert json.dumps(truth)  # the fixture ran its round whole


def test_events_join_a_snapshot(tmp_path: Path) -> None:
    """An event's (pid, goid) is a goroutine of a snapshot of the same process in the
    same file: the -tick goroutine, traced in main.tick, then snapshotted."""
    truth_path = tmp_path / "truth.json"
    code = code_of(fixture_binary("local"))
    db = tmp_path / "t.duckdb"
    with start_eventfixture("local", truth_path, "-tick", "1ms") as fx:
        with tracing([fx.pid], db, "--probe", "main.tick", "--json") as tr:
            wait_probes_in(fx.pid, code, ["main.tick"], tr.proc)
            tr.wait_json("probe")
            tr.wait_json("probe", timeout=30, after=time.time() + 1.0)
            assert tr.stop() == 0, tr.stderr_lines()
        snap = subprocess.run(
            [str(CLI), "snapshot", str(fx.pid), "-o", str(db)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert snap.returncode == 0, snap.stderr
    with connect(db) as con:
        goids = con.execute("SELECT DISTINCT pid, goid FROM events").fetchall()
        assert len(goids) == 1, goids
        joined = rows(
            con,
            "SELECT g.goid, list(f.function ORDER BY f.depth) AS functions "
            "FROM events e JOIN goroutines g USING (pid, goid) "
            "JOIN frames f USING (snapshot_id, pid, goid) GROUP BY g.goid",
        )
    assert [r["goid"] for r in joined] == [goids[0][1]]
    assert any(fn.startswith("main.main.func") for fn in joined[0]["functions"]), joined
