"""`snapshot --spec` and `apply` through the command line, with the capture faked."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sideeye_tui import cli, procs
from sideeye_tui.model import Snapshot
from sideeye_tui.procs import GoProcess
from sideeye_tui.reports import write_reports
from sideeye_tui.store import write_snapshot

from .support import HANDLE, SPEC, process, request, snapshot, spec


@pytest.fixture
def fake_capture(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Any]:
    """Root, a Go target, and a capture returning a made-up snapshot; records captures=."""
    calls: list[Any] = []
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        procs,
        "check_target",
        lambda pid: GoProcess(
            pid, "svc", "/nonexistent/svc", "go1.26.8", "example.com/svc", True, 4, 1.0
        ),
    )

    def take(
        pids: list[int],
        backend: str,
        progress: object,
        captures: Mapping[str, Sequence[str]] | None = None,
        early_walk: bool = True,
    ) -> Snapshot:
        calls.append(captures)
        return snapshot(
            process(
                10,
                (request(1, 0, "a", "alice", "t1"), request(2, 1, "b", None, "t2")),
                ("no variable 's' in main.(*Server).handle",),
            )
        )

    monkeypatch.setattr(cli, "_take_snapshot", take)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return calls


def test_snapshot_with_spec(
    fake_capture: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_file = tmp_path / "server.toml"
    spec_file.write_text(SPEC + '\n[tables.bad]\nsql = "SELECT nope FROM frames"\n')
    db = tmp_path / "s.duckdb"
    assert cli.main(["snapshot", "10", "-o", str(db), "--spec", str(spec_file)]) == 0
    assert fake_capture == [{HANDLE: ["req", "req.User.Name", "s.addr"]}]
    out, err = capsys.readouterr()
    assert f"wrote snapshot 1 to {db}" in out
    lines = err.splitlines()
    assert lines[0] == "warning: pid 10: no variable 's' in main.(*Server).handle"
    assert lines[1].startswith("warning: derived table 'bad': Binder Error: Referenced column")
    assert len(lines) == 2
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT goid, id, user FROM inflight").fetchall() == [
        (1, "a", "alice"),
        (2, "b", None),
    ]


def test_snapshot_with_broken_spec_still_writes(
    fake_capture: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_file = tmp_path / "broken.toml"
    spec_file.write_text("[functions.f]\ncapture = 'req'\n")
    db = tmp_path / "s.duckdb"
    assert cli.main(["snapshot", "10", "-o", str(db), "--spec", str(spec_file)]) == 0
    assert fake_capture == [None]
    err = capsys.readouterr().err
    assert (
        f"warning: {spec_file}: functions.f.capture: must be a list of non-empty strings\n" in err
    )
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM goroutines").fetchone() == (2,)
    assert con.execute("SELECT message FROM spec_messages").fetchall() == [
        (f"{spec_file}: functions.f.capture: must be a list of non-empty strings",),
        ("no variable 's' in main.(*Server).handle",),
    ]


def test_snapshot_missing_spec_is_refused_before_capture(
    fake_capture: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli.main(["snapshot", "10", "-o", str(tmp_path / "s.duckdb"), "--spec", "nope.toml"]) == 1
    )
    assert capsys.readouterr().err == "sideeye-tui: nope.toml: no such spec file\n"
    assert fake_capture == []


def test_snapshot_discovers_project_specs(
    fake_capture: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".sideeye").mkdir()
    (tmp_path / ".sideeye" / "team.toml").write_text('module = "example.com/svc"\n' + SPEC)
    db = tmp_path / "s.duckdb"
    assert cli.main(["snapshot", "10", "-o", str(db)]) == 0
    assert fake_capture == [{HANDLE: ["req", "req.User.Name", "s.addr"]}]
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute(f'SELECT count(*) FROM "{HANDLE}"').fetchone() == (2,)


APPLIED = """
[functions."main.(*Server).handle"]
capture = ["req", "req.Body"]
extra = { id = "req->>'$.ID'", user = "upper(\\"req.User.Name\\")" }

[tables.by_user]
sql = 'SELECT user, count(*) AS n FROM "main.(*Server).handle" GROUP BY user ORDER BY user'

[[links]]
from = { table = "by_user", columns = ["user"] }
to   = { table = "main.(*Server).handle", columns = ["user"] }
"""


def test_apply_recomputes_every_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.duckdb"
    for who in ("alice", "bob"):
        snap = snapshot(
            process(10, (request(1, 0, "a", who, "t1"), request(2, 0, "b", None, "t2")))
        )
        sid = write_snapshot(str(db), snap)
        write_reports(str(db), sid, snap, spec())
    spec_file = tmp_path / "applied.toml"
    spec_file.write_text(APPLIED)

    assert cli.main(["apply", str(db), "--spec", str(spec_file)]) == 1
    out, err = capsys.readouterr()
    assert out == f"applied {spec_file} to {db}: 2 tables, 1 links\n"
    assert err == (
        "warning: main.(*Server).handle: expression 'req.Body' was not captured in this file;"
        " values are read when a snapshot is taken and cannot be added afterwards\n"
    )
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute(
        f'SELECT snapshot_id, goid, id, user FROM "{HANDLE}" ORDER BY 1, 2'
    ).fetchall() == [
        (1, 1, "a", "ALICE"),
        (1, 2, "b", None),
        (2, 1, "a", "BOB"),
        (2, 2, "b", None),
    ]
    assert con.execute("SELECT * FROM by_user ORDER BY ALL").fetchall() == [
        (1, "ALICE", 1),
        (1, None, 1),
        (2, "BOB", 1),
        (2, None, 1),
    ]
    assert con.execute("SELECT snapshot_id, to_goid FROM links ORDER BY ALL").fetchall() == [
        (1, 1),
        (2, 1),
    ]
    assert con.execute(
        "SELECT message FROM spec_messages WHERE snapshot_id IS NULL"
    ).fetchall() == [(err.removeprefix("warning: ").rstrip("\n"),)]
    con.close()

    # Applying again replaces, not duplicates; a clean spec exits 0.
    spec_file.write_text(APPLIED.replace(', "req.Body"', ""))
    assert cli.main(["apply", str(db), "--spec", str(spec_file)]) == 0
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM links").fetchone() == (2,)
    assert con.execute("SELECT count(*) FROM by_user").fetchone() == (4,)
    assert con.execute(
        "SELECT count(*) FROM spec_messages WHERE snapshot_id IS NULL"
    ).fetchone() == (0,)


def test_apply_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.duckdb"
    write_snapshot(str(db), snapshot(process(10, ())))
    bad = tmp_path / "bad.toml"
    bad.write_text("[tables.t]\nsql = 'SELECT 1'\n[tables.t]\nsql = 'x'\n")
    assert cli.main(["apply", str(db), "--spec", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"sideeye-tui: {bad}:3:") and err.count("\n") == 1

    good = tmp_path / "good.toml"
    good.write_text("[tables.t]\nsql = 'SELECT count(*) AS n FROM goroutines'\n")
    assert cli.main(["apply", str(tmp_path / "none.duckdb"), "--spec", str(good)]) == 1
    assert capsys.readouterr().err == f"sideeye-tui: {tmp_path / 'none.duckdb'}: no such file\n"

    # An older file (no spec tables yet) takes a spec.
    assert cli.main(["apply", str(db), "--spec", str(good)]) == 0
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT * FROM t").fetchall() == [(1, 0)]


def test_snapshot_says_which_spec_files_it_applied(
    fake_capture: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".sideeye").mkdir()
    team = tmp_path / ".sideeye" / "team.toml"
    team.write_text('module = "example.com/svc"\n' + SPEC)
    db = tmp_path / "s.duckdb"
    assert cli.main(["snapshot", "10", "-o", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"applied spec {team}"
