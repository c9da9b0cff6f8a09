"""bench.values and bench.spec_compile still run (once, small; their numbers are not
checked here: speed is measured under bench/, never in a test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import spec_compile
from bench import values as bench_values
from tests.go.build import GO_DIR, build_go

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go, pytest.mark.slow]


def test_values_bench_runs(tmp_path: Path) -> None:
    out = tmp_path / "values.md"
    assert bench_values.main(["--goroutines", "200", "--runs", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| 200 | 200 | 3 |" in text and "walk: early" in text


def test_spec_compile_bench_runs(tmp_path: Path) -> None:
    binary = build_go(GO_DIR / "deepfixture")
    out = tmp_path / "compile.md"
    argv = ["--binary", str(binary), "--spec", "main.deep=n,m,p", "--runs", "1"]
    assert spec_compile.main([*argv, "--out", str(out)]) == 0
    text = out.read_text()
    assert "| new |" in text and "| cached |" in text
