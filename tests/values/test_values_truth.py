"""Captured values against the truth valuesfixture reports about itself.

Every holder goroutine of the fixture parks in a function whose parameters and locals
hold values of every kind; the fixture encodes them with the same JSON conventions
as the decoder (see tests/go/valuesfixture/encode.go). Values over a budget are
compared as a prefix of the truth, and must be marked as cut.
"""

from __future__ import annotations

from typing import Any

import pytest

from sideeye_tui.capture.snapshot import capture_process
from sideeye_tui.model import ProcessSnapshot
from tests.capture.support import BACKENDS
from tests.go.build import start_fixture

from .conftest import valuesfixture_binary

pytestmark = [pytest.mark.root, pytest.mark.go]

TOOLCHAIN_BUILDS = ["local", "go1.24.13", "go1.22.12"]


def _captures(report: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for h in report["holders"]:
        names = out.setdefault(h["function"], [])
        names.extend(n for n in h["values"] if n not in names)
    return out


def _is_cut(v: Any) -> bool:
    return isinstance(v, dict) and "$cut" in v


def matches_prefix(got: Any, want: Any) -> bool:
    """got equals want, except where got is marked cut: then what it kept is a prefix
    (strings, lists) or a subset (objects, pair lists) of want."""
    if _is_cut(got):
        kept = got.get("$value")
        if kept is None:
            return True  # nothing kept past a depth limit, a cycle or the budget
        if isinstance(kept, str):
            return isinstance(want, str) and want.startswith(kept)
        if isinstance(kept, list) and isinstance(want, list):
            if kept and isinstance(kept[0], list) and len(kept[0]) == 2:
                return all(pair in want for pair in kept)  # a map's pairs: a subset
            return all(matches_prefix(g, w) for g, w in zip(kept, want, strict=False)) and len(
                kept
            ) <= len(want)
        if isinstance(kept, dict) and isinstance(want, dict):
            return all(k in want and matches_prefix(v, want[k]) for k, v in kept.items())
        return False
    if isinstance(got, str) and got.endswith("…") and isinstance(want, str):
        return want.startswith(got[:-1]) and len(want) > len(got) - 1
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(matches_prefix(got[k], want[k]) for k in got)
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(
            matches_prefix(g, w) for g, w in zip(got, want, strict=True)
        )
    return bool(got == want)


def _contains_cut(v: Any) -> bool:
    if _is_cut(v) or (isinstance(v, str) and v.endswith("…")):
        return True
    if isinstance(v, dict):
        return any(_contains_cut(x) for x in v.values())
    if isinstance(v, list):
        return any(_contains_cut(x) for x in v)
    return False


def check_against_truth(proc: ProcessSnapshot, report: dict[str, Any]) -> int:
    got = {(c.goid, c.function): c for c in proc.captures}
    compared = 0
    for h in report["holders"]:
        frame = got.get((h["goid"], h["function"]))
        assert frame is not None, f"no captured frame of {h['function']} in goroutine {h['goid']}"
        values = {v.expression: v for v in frame.values}
        for name, want in h["values"].items():
            v = values[name]
            assert v.unavailable is None, f"{h['function']} {name}: {v.unavailable}"
            if name in h.get("cut", []):
                assert _contains_cut(v.value), (
                    f"{h['function']} {name}: over budget, not marked cut"
                )
                assert matches_prefix(v.value, want), f"{h['function']} {name}: {v.value!r:.300}"
            else:
                assert v.value == want, (
                    f"{h['function']} {name}: got {v.value!r:.300} want {want!r:.300}"
                )
            compared += 1
    return compared


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("build", TOOLCHAIN_BUILDS)
def test_values_match_the_fixture(build: str, backend: str) -> None:
    with start_fixture(valuesfixture_binary(build)) as fx:
        proc = capture_process(fx.pid, backend, _captures(fx.report))
        assert proc.error is None, proc.error
        assert proc.spec_errors == ()
        compared = check_against_truth(proc, fx.report)
        assert compared >= 60


@pytest.mark.parametrize("backend", BACKENDS)
def test_stripped_binary_still_gives_stacks_and_says_why_values_are_missing(backend: str) -> None:
    with start_fixture(valuesfixture_binary("local-stripped")) as fx:
        captures = _captures(fx.report)
        proc = capture_process(fx.pid, backend, captures)
        assert proc.error is None, proc.error
        assert len(proc.goroutines) >= len(fx.report["holders"])
        assert proc.spec_errors, "a stripped binary must explain the missing variables"
        assert all("no DWARF" in e for e in proc.spec_errors)
        for c in proc.captures:
            assert all(v.value is None and "no DWARF" in (v.unavailable or "") for v in c.values)
