"""Bad input to `trace`: one line `sideeye-tui: ...` on stderr, exit 1 (2 for a usage
error), no traceback, and the target untouched and running."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.go.build import Fixture

from .support import (
    code_of,
    fixture_binary,
    run_trace,
    start_eventfixture,
    wait_code_restored,
    write_spec,
)

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    with start_eventfixture("local", tmp_path_factory.mktemp("bad") / "truth.json") as fx:
        yield fx


@pytest.fixture
def sleeper() -> Iterator[int]:
    proc = subprocess.Popen(["sleep", "100"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def one_line_error(res: subprocess.CompletedProcess[str], code: int = 1) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == code, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith("sideeye-tui: "), lines[0]
    return lines[0]


def untouched(fx: Fixture) -> None:
    assert fx.proc.poll() is None
    assert wait_code_restored(fx.pid, code_of(fixture_binary("local")), timeout=0) == []


def test_unknown_function_suggests_close_names(target: Fixture, tmp_path: Path) -> None:
    res = run_trace([target.pid], tmp_path / "t.duckdb", "--probe", "main.handel", "--for", "2s")
    line = one_line_error(res)
    assert "main.handel" in line and "main.handle" in line.replace("main.handel", "")
    untouched(target)


def test_unknown_function_in_spec(target: Fixture, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "s.toml", {"main.recurze": {}})
    res = run_trace([target.pid], tmp_path / "t.duckdb", "--spec", str(spec), "--for", "2s")
    line = one_line_error(res)
    assert "main.recurse" in line.replace("main.recurze", "")
    untouched(target)


def test_non_go_pid(sleeper: int, tmp_path: Path) -> None:
    res = run_trace([sleeper], tmp_path / "t.duckdb", "--probe", "main.handle", "--for", "2s")
    line = one_line_error(res)
    assert str(sleeper) in line


def test_no_such_pid(tmp_path: Path) -> None:
    pid = int(Path("/proc/sys/kernel/pid_max").read_text())
    res = run_trace([pid], tmp_path / "t.duckdb", "--probe", "main.handle", "--for", "2s")
    assert str(pid) in one_line_error(res)


def test_line_without_code(target: Fixture, tmp_path: Path) -> None:
    line_no = target.report["lines"]["nocode"]["line"]
    loc = f"eventfixture/workload.go:{line_no}"
    res = run_trace([target.pid], tmp_path / "t.duckdb", "--probe", loc, "--for", "2s")
    assert loc in one_line_error(res) or str(line_no) in res.stderr
    untouched(target)


def test_ambiguous_file_names_candidates(target: Fixture, tmp_path: Path) -> None:
    line_no = target.report["lines"]["loop"]["line"]
    res = run_trace(
        [target.pid], tmp_path / "t.duckdb", "--probe", f"workload.go:{line_no}", "--for", "2s"
    )
    line = one_line_error(res)
    assert "eventfixture/workload.go" in line and "eventfixture/sub/workload.go" in line, line
    untouched(target)


def test_no_such_file(target: Fixture, tmp_path: Path) -> None:
    res = run_trace([target.pid], tmp_path / "t.duckdb", "--probe", "nosuch.go:3", "--for", "2s")
    assert "nosuch.go" in one_line_error(res)


@pytest.mark.parametrize("bad", ["3x", "-1s", "soon"])
def test_bad_duration(target: Fixture, tmp_path: Path, bad: str) -> None:
    res = run_trace([target.pid], tmp_path / "t.duckdb", "--probe", "main.handle", "--for", bad)
    assert res.returncode in (1, 2), res.stderr
    assert "Traceback" not in res.stderr
    assert "--for" in res.stderr or bad in res.stderr
    untouched(target)


def test_unsupported_condition(target: Fixture, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "s.toml",
        {"main.handle": {"capture": ["n", "tags"], "when": "len(tags) > n"}},
    )
    res = run_trace([target.pid], tmp_path / "t.duckdb", "--spec", str(spec), "--for", "2s")
    line = one_line_error(res)
    assert "len(tags) > n" in line or "when" in line, line
    untouched(target)
