"""The command line: exit codes, one-line errors, the ps table, the snapshot flow."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sideeye_tui import cli, procs
from sideeye_tui.errors import CaptureError, ProcessError
from sideeye_tui.explorer.picker import parse_snapshot_json, snapshot_subprocess
from sideeye_tui.model import Goroutine, ProcessSnapshot, Snapshot
from sideeye_tui.procs import GoProcess, check_target
from sideeye_tui.store import list_snapshots, open_store

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sideeye_tui", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def free_pid() -> int:
    """A pid no process can have: pids stay below pid_max."""
    return int(Path("/proc/sys/kernel/pid_max").read_text())


@pytest.fixture
def sleeper() -> Iterator[int]:
    proc = subprocess.Popen(["sleep", "100"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def fake_target(pid: int) -> GoProcess:
    return GoProcess(pid, f"svc-{pid}", "/bin/svc", "go1.22.12", "example.com/svc", True, 4, 1.0)


def goroutines(*statuses: str) -> tuple[Goroutine, ...]:
    return tuple(Goroutine(i + 1, s, None, None, None, None, None) for i, s in enumerate(statuses))


def fake_capture(
    results: dict[int, ProcessSnapshot],
    calls: list[list[int]],
    early_walks: list[bool] | None = None,
) -> Callable[..., Snapshot]:
    def take(
        pids: list[int],
        backend: str,
        progress: object,
        captures: object = None,
        early_walk: bool = True,
    ) -> Snapshot:
        calls.append(pids)
        if early_walks is not None:
            early_walks.append(early_walk)
        return Snapshot(datetime.now(UTC), "host", tuple(results[p] for p in pids))

    return take


def captured(pid: int, *statuses: str) -> ProcessSnapshot:
    return ProcessSnapshot(
        pid,
        "/bin/svc",
        "b",
        "go1.22.12",
        "example.com/svc",
        420_000,
        4,
        "ebpf",
        goroutines(*statuses),
    )


def failed(pid: int) -> ProcessSnapshot:
    return ProcessSnapshot(
        pid, "/bin/svc", None, None, None, None, backend="ebpf", error="exited during the capture"
    )


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(procs, "check_target", fake_target)


# -- errors ---------------------------------------------------------------------------


def test_bad_pid_is_one_line(tmp_path: Path) -> None:
    pid = free_pid()
    r = run_cli("snapshot", str(pid), "-o", str(tmp_path / "x.duckdb"))
    assert r.returncode == 1
    expected = (
        f"sideeye-tui: no process with pid {pid}\n"
        if os.geteuid() == 0
        else "sideeye-tui: snapshot needs root (ptrace and eBPF)\n"
    )
    assert r.stderr == expected
    assert r.stdout == ""
    assert not (tmp_path / "x.duckdb").exists()


def test_check_target_messages(sleeper: int) -> None:
    with pytest.raises(ProcessError) as err:
        check_target(free_pid())
    assert str(err.value) == f"no process with pid {free_pid()}"
    with pytest.raises(ProcessError, match=r"^no process with pid -3$"):
        check_target(-3)
    with pytest.raises(ProcessError) as err:
        check_target(os.getpid())
    assert str(err.value) == f"pid {os.getpid()} is sideeye-tui itself"


@pytest.mark.root
def test_non_go_process(sleeper: int, tmp_path: Path) -> None:
    with pytest.raises(ProcessError) as err:
        check_target(sleeper)
    assert str(err.value) == f"pid {sleeper} (sleep 100) is not a Go program"
    r = run_cli("snapshot", str(sleeper), "-o", str(tmp_path / "x.duckdb"))
    assert r.returncode == 1
    assert r.stderr == f"sideeye-tui: pid {sleeper} (sleep 100) is not a Go program\n"


def test_zombie(tmp_path: Path) -> None:
    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 30  # a loaded machine may take long to run `true`
        while Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1][0] != "Z":
            assert time.monotonic() < deadline, "never became a zombie"
            time.sleep(0.01)
        with pytest.raises(ProcessError, match=rf"^pid {child.pid} \(\[true\]\) has exited$"):
            check_target(child.pid)
    finally:
        child.wait()


def test_snapshot_needs_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli.main(["snapshot", "1", "-o", "x.duckdb"]) == 1
    assert capsys.readouterr().err == "sideeye-tui: snapshot needs root (ptrace and eBPF)\n"


def test_internal_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(args: object) -> int:
        raise ValueError("bad thing")

    monkeypatch.setattr(cli, "run_ps", boom)
    monkeypatch.delenv("SIDEEYE_DEBUG", raising=False)
    assert cli.main(["ps"]) == 3  # not 2: that is argparse's usage error
    err = capsys.readouterr().err
    assert err == (
        "sideeye-tui: internal error: ValueError: bad thing (set SIDEEYE_DEBUG=1 for a traceback)\n"
    )
    monkeypatch.setenv("SIDEEYE_DEBUG", "1")
    assert cli.main(["ps"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("(set SIDEEYE_DEBUG=1 for a traceback)\n")


def test_keyboard_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run_ps", interrupted)
    assert cli.main(["ps"]) == 130


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["snapshot", "notapid", "-o", "x"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        cli.main(["snapshot"])  # no pid (a bare `sideeye-tui` opens the explorer)
    assert e.value.code == 2


# -- ps -------------------------------------------------------------------------------


def test_ps_runs() -> None:
    r = run_cli("ps")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0].split() == ["PID", "COMMAND", "GO", "MODULE", "DWARF", "THREADS"]
    assert "Traceback" not in r.stderr


def test_ps_table(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        GoProcess(7, "/srv/api --port 80", "/srv/api", "go1.22.12", "example.com/api", True, 12, 5),
        GoProcess(12345, "w", "/w", "go1.24.1", None, False, 3, 1),
    ]
    monkeypatch.setattr(procs, "list_go_processes", lambda: rows)
    assert cli.main(["ps"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "PID    COMMAND             GO         MODULE           DWARF  THREADS",
        "7      /srv/api --port 80  go1.22.12  example.com/api  yes    12",
        "12345  w                   go1.24.1   ?                no     3",
    ]


# -- snapshot flow (capture faked) ----------------------------------------------------


def test_snapshot_writes_and_summarizes(
    as_root: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls: list[list[int]] = []
    results = {
        10: captured(10, "waiting", "waiting", "running", "syscall", "waiting"),
        11: failed(11),
    }
    monkeypatch.setattr(cli, "_take_snapshot", fake_capture(results, calls))
    out = str(tmp_path / "s.duckdb")
    assert cli.main(["snapshot", "10", "11", "10", "-o", out]) == 0
    assert calls == [[10, 11]]
    assert capsys.readouterr().out.splitlines() == [
        "pid 10 example.com/svc go1.22.12: 5 goroutines (waiting 3, running 1, syscall 1)"
        " pause 0.42 ms",
        "pid 11 svc: failed: exited during the capture",
        f"wrote snapshot 1 to {out}",
    ]
    assert cli.main(["snapshot", "10", "-o", out]) == 0
    with open_store(out) as con:
        assert [s.snapshot_id for s in list_snapshots(con)] == [1, 2]


def test_snapshot_with_caveats_is_written(
    as_root: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A capture that happened with caveats is kept: written, exit 0, each caveat a
    warning line on stderr and a row's notes."""
    notes = ("3 records were lost (ring buffer full)", "2 frames of spec'd functions were lost")
    proc = dataclasses.replace(captured(10, "waiting", "waiting"), notes=notes)
    monkeypatch.setattr(cli, "_take_snapshot", fake_capture({10: proc}, []))
    out = tmp_path / "s.duckdb"
    assert cli.main(["snapshot", "10", "-o", str(out)]) == 0
    io = capsys.readouterr()
    assert io.out.splitlines() == [
        "pid 10 example.com/svc go1.22.12: 2 goroutines (waiting 2) pause 0.42 ms",
        f"wrote snapshot 1 to {out}",
    ]
    assert io.err.splitlines() == [f"warning: pid 10: {n}" for n in notes]
    with open_store(str(out)) as con:
        assert con.execute("SELECT error, notes, goroutine_count FROM processes").fetchall() == [
            (None, list(notes), 2)
        ]
    # With --json too: the caveats are the process object's notes and warnings on stderr,
    # which the explorer's picker shows (it reads the warning lines of stderr).
    assert cli.main(["snapshot", "10", "-o", str(out), "--json"]) == 0
    io = capsys.readouterr()
    first = json.loads(io.out.splitlines()[0])
    assert (first["captured"], first["notes"]) == (True, list(notes))
    assert io.err.splitlines() == [f"warning: pid 10: {n}" for n in notes]


def test_snapshot_json_is_one_object_per_process_then_the_snapshot(
    as_root: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = {10: captured(10, "waiting", "running", "waiting"), 11: failed(11)}
    monkeypatch.setattr(cli, "_take_snapshot", fake_capture(results, []))
    out = str(tmp_path / "s.duckdb")
    assert cli.main(["snapshot", "10", "11", "-o", out, "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    objects = [json.loads(line) for line in lines]
    assert [o["kind"] for o in objects] == ["process", "process", "snapshot"]
    ok, bad, snap = objects
    assert (ok["pid"], ok["captured"], ok["goroutines"]) == (10, True, 3)
    assert ok["by_status"] == {"waiting": 2, "running": 1}
    assert ok["pause_ns"] == 420_000 and ok["error"] is None
    assert (bad["pid"], bad["captured"], bad["error"]) == (11, False, "exited during the capture")
    assert ok["notes"] == [] and bad["notes"] == []
    assert snap == {"kind": "snapshot", "snapshot_id": 1, "file": out, "processes": 2, "failed": 1}
    # What the explorer's picker makes of it: the id, and a line per process.
    result = parse_snapshot_json(lines, 0, [])
    assert (result.ok, result.snapshot_id) == (True, 1)
    assert result.lines[1] == "pid 11 svc: failed: exited during the capture"


def test_snapshot_no_early_walk_reaches_the_capture(
    as_root: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[list[int]] = []
    early_walks: list[bool] = []
    take = fake_capture({10: captured(10, "waiting")}, calls, early_walks)
    monkeypatch.setattr(cli, "_take_snapshot", take)
    out = str(tmp_path / "s.duckdb")
    assert cli.main(["snapshot", "10", "-o", out]) == 0
    assert cli.main(["snapshot", "10", "-o", out, "--no-early-walk"]) == 0
    assert early_walks == [True, False]


def test_snapshot_all_failed(
    as_root: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cli, "_take_snapshot", fake_capture({5: failed(5)}, []))
    out = tmp_path / "s.duckdb"
    assert cli.main(["snapshot", "5", "-o", str(out)]) == 1
    io = capsys.readouterr()
    assert io.out == "pid 5 svc: failed: exited during the capture\n"
    assert io.err == f"sideeye-tui: no process captured; {out} not written\n"
    assert not out.exists()


def test_snapshot_total_failure(
    as_root: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fails(pids: list[int], backend: str, progress: object, **options: object) -> Snapshot:
        raise CaptureError("the eBPF probe did not load")

    monkeypatch.setattr(cli, "_take_snapshot", fails)
    assert cli.main(["snapshot", "5", "-o", str(tmp_path / "s.duckdb")]) == 1
    assert capsys.readouterr().err == "sideeye-tui: the eBPF probe did not load\n"


def test_snapshot_refuses_a_foreign_file_before_pausing(
    as_root: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls: list[list[int]] = []
    monkeypatch.setattr(cli, "_take_snapshot", fake_capture({}, calls))
    out = tmp_path / "notes.duckdb"
    out.write_text("my notes\n")
    assert cli.main(["snapshot", "5", "-o", str(out)]) == 1
    assert capsys.readouterr().err == f"sideeye-tui: {out}: not a sideeye-tui database\n"
    assert cli.main(["snapshot", "5", "-o", str(tmp_path / "no" / "x.duckdb")]) == 1
    assert "no such directory" in capsys.readouterr().err
    assert calls == []


def test_python_dash_m_help() -> None:
    r = run_cli("--help")
    assert r.returncode == 0
    assert "snapshot" in r.stdout and "ps" in r.stdout


# -- with a real Go program -----------------------------------------------------------


@pytest.fixture(scope="module")
def snapfixture_binary() -> Path:
    from tests.go.build import SNAPFIXTURE, build_go

    return build_go(SNAPFIXTURE, toolchain=None, stripped=False)


@pytest.mark.go
def test_ps_lists_a_go_program(snapfixture_binary: Path) -> None:
    from tests.go.build import start_fixture

    with start_fixture(snapfixture_binary, "-park", "10", "-lifetime", "2m") as fx:
        found = {p.pid: p for p in procs.list_go_processes()}
        assert fx.pid in found
        p = found[fx.pid]
        assert p.main_module == "example.com/snapfixture"
        assert p.go_version == fx.report["go_version"]
        assert p.has_dwarf and p.threads >= 1
        assert p.command == "snapfixture " + " ".join(fx.args)
        assert p.exe == str(snapfixture_binary)
        target = check_target(fx.pid)
        assert (target.pid, target.exe, target.main_module) == (p.pid, p.exe, p.main_module)
        r = run_cli("ps")
        assert any(line.split()[0] == str(fx.pid) for line in r.stdout.splitlines()[1:])


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.go
@pytest.mark.slow
def test_the_pickers_snapshot_runner_reads_snapshot_json(
    snapfixture_binary: Path, tmp_path: Path
) -> None:
    """The explorer's runner of `snapshot --json`, against a real capture: the id of the
    snapshot it wrote, its progress lines, and each process's line."""
    from tests.go.build import start_fixture

    out = tmp_path / "s.duckdb"
    progress: list[str] = []
    with start_fixture(snapfixture_binary, "-park", "10", "-lifetime", "2m") as fx:
        result = snapshot_subprocess([fx.pid], str(out), progress.append)
    assert result.ok, result.lines
    with open_store(str(out)) as con:
        assert [s.snapshot_id for s in list_snapshots(con)] == [result.snapshot_id] == [1]
    assert result.lines[0].startswith(f"pid {fx.pid} example.com/snapfixture ")
    assert progress  # the capture's progress lines came through stderr


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.go
@pytest.mark.slow
def test_snapshot_of_a_go_program(snapfixture_binary: Path, tmp_path: Path) -> None:
    from tests.go.build import start_fixture

    out = tmp_path / "s.duckdb"
    with start_fixture(snapfixture_binary, "-park", "100", "-lifetime", "2m") as fx:
        r = run_cli("snapshot", str(fx.pid), "-o", str(out))
        expected = fx.report["expected_goroutines"]
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"pid {fx.pid} example.com/snapfixture {fx.report['go_version']}: ")
    assert lines[-1] == f"wrote snapshot 1 to {out}"
    with open_store(str(out)) as con:
        (count,) = con.execute(
            "SELECT goroutine_count FROM processes WHERE pid = ?", [fx.pid]
        ).fetchone() or (0,)
        assert count >= expected
        assert con.execute(
            "SELECT count(*) FROM frames WHERE function = 'main.main'"
        ).fetchone() == (1,)
