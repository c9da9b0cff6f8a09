"""The Go fixtures build with every toolchain and tell a self-consistent truth."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from .build import (
    BENCH_TARGET,
    DEMO_SERVICE,
    SNAPFIXTURE,
    TOOLCHAINS,
    build_go,
    go_binary,
    start_fixture,
)

pytestmark = [
    pytest.mark.go,
    pytest.mark.skipif(go_binary() is None, reason="no go command"),
]

# Small counts: the point here is the fixture itself, not scale.
SMALL = ("-park", "50", "-spin", "1", "-syscall", "1", "-lifetime", "3m")


def is_subsequence(needles: Sequence[str], haystack: Sequence[str]) -> bool:
    it = iter(haystack)
    return all(any(h == n for h in it) for n in needles)


def check_snapfixture_report(r: dict[str, Any], pid: int) -> None:
    assert r["schema"] == 1
    assert r["program"] == "snapfixture"
    assert r["pid"] == pid
    assert r["settled"] is True
    groups = r["groups"]
    names = [g["name"] for g in groups]
    assert len(names) == len(set(names))

    all_ids = [i for g in groups for i in g["ids"]]
    assert len(all_ids) == len(set(all_ids)), "a goroutine id is in two groups"
    assert all(isinstance(i, int) and i > 0 for i in all_ids)
    for g in groups:
        assert len(g["ids"]) == g["count"], g["name"]
        assert g["ids"] == sorted(g["ids"])
    assert sum(g["count"] for g in groups) == r["expected_goroutines"]
    assert r["num_goroutine"] == r["expected_goroutines"]
    assert next(g for g in groups if g["name"] == "main")["ids"] == [1]

    for g in groups:
        states = g["runtime_states"]
        assert sum(states.values()) == g["count"], (g["name"], states)
        if g["status"] == "waiting":
            assert set(states) == {g["wait_reason"]}, (g["name"], states)
        else:
            assert set(states) <= set(g["statuses"]), (g["name"], states)
        assert g["runtime_view"], g["name"]
        for view in g["runtime_view"]:
            assert view["id"] in g["ids"]
            assert view["header"].startswith(f"goroutine {view['id']} [")
            expected = g["functions"]
            frames = view["frames"]
            if view["elided"]:
                # The runtime prints the innermost and outermost frames only.
                assert is_subsequence(expected[:40], frames), g["name"]
                assert frames[-1] == expected[-1]
            else:
                assert is_subsequence(expected, frames), (g["name"], expected, frames)
        assert set(g["inlined"]) <= set(g["functions"])

    by_name = {g["name"]: g for g in groups}
    recurse = by_name["recurse"]
    assert recurse["functions"].count("main.recurse") == r["recursion_depth"]
    assert by_name["inlined"]["inlined"] == ["main.inlinedHelper"]
    labeled = by_name["labeled"]
    assert set(labeled["labels"]) == {str(i) for i in labeled["ids"]}
    workers = {lab["worker"] for lab in labeled["labels"].values()}
    assert len(workers) == labeled["count"]
    assert all(lab["role"] == "labeled" for lab in labeled["labels"].values())


@pytest.mark.parametrize("toolchain", TOOLCHAINS, ids=lambda t: t or "local")
def test_snapfixture_each_toolchain(toolchain: str | None) -> None:
    binary = build_go(SNAPFIXTURE, toolchain)
    with start_fixture(binary, *SMALL) as fx:
        r = fx.report
        if toolchain is not None:
            assert r["go_version"] == toolchain
        check_snapfixture_report(r, fx.pid)
        assert fx.proc.poll() is None
    assert fx.proc.poll() is not None


def elf_function_symbols(path: Path) -> set[str]:
    with path.open("rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection), f"{path} has no symbol table"
        return {sym.name for sym in symtab.iter_symbols()}


@pytest.mark.parametrize("toolchain", TOOLCHAINS, ids=lambda t: t or "local")
def test_snapfixture_inlining(toolchain: str | None) -> None:
    """main.inlinedHelper exists only as inlined code; its neighbours are real functions."""
    names = elf_function_symbols(build_go(SNAPFIXTURE, toolchain))
    assert "main.inlinedHelper" not in names
    for real in ("main.inlinedOuter", "main.inlinedPark", "main.recurse", "main.spinStep"):
        assert real in names
    assert {"main.genericWait[go.shape.int]", "main.genericWait[go.shape.string]"} <= names


def test_snapfixture_stripped() -> None:
    full = build_go(SNAPFIXTURE)
    stripped = build_go(SNAPFIXTURE, stripped=True)
    assert stripped != full
    assert stripped.stat().st_size < full.stat().st_size
    with start_fixture(stripped, *SMALL, "-depth", "120") as fx:
        check_snapfixture_report(fx.report, fx.pid)
        assert fx.report["recursion_depth"] == 120


def test_build_is_cached() -> None:
    """A second build of the same sources is the cached binary, not rebuilt (a clock
    would say so only on an idle machine: the file's identity says it always)."""
    first = build_go(SNAPFIXTURE)
    before = first.stat()
    again = build_go(SNAPFIXTURE)
    assert again == first
    after = again.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_report_file(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    with start_fixture(build_go(SNAPFIXTURE), *SMALL, "-report", str(out)) as fx:
        assert json.loads(out.read_text()) == fx.report


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


def test_demo_service() -> None:
    with start_fixture(build_go(DEMO_SERVICE), "-clients", "4", "-lifetime", "3m") as fx:
        r = fx.report
        assert r["program"] == "demo-service" and r["pid"] == fx.pid
        assert r["addr"].startswith("127.0.0.1:")
        assert r["requests_ok"] >= 4
        stats = get_json(r["url"] + "/stats")
        assert stats["requests"] >= 4


def test_bench_target() -> None:
    args = ("-goroutines", "2000", "-lifetime", "3m")
    with start_fixture(build_go(BENCH_TARGET), *args) as fx:
        r = fx.report
        assert r["program"] == "bench-target" and r["pid"] == fx.pid
        assert r["goroutines"] == 2000
        assert r["num_goroutine"] >= 2000
        base = r["url"]
        assert get_json(base + "/hiccup/reset")["max_gap_ns"] == 0
        time.sleep(0.3)
        after = get_json(base + "/hiccup/max")
        assert after["samples"] > 0 and after["enabled"] is True
        assert after["max_gap_ns"] > 0
