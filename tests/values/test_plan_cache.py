"""A compiled capture plan is kept on disk and reused: same plan, same values.

The plan is keyed by the binary's build id, its runtime layout and the spec; the
truth is valuesfixture's report of its own values (see test_values_truth.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sideeye_tui.capture.snapshot import capture_process
from sideeye_tui.dwarf.binary import GoBinary
from sideeye_tui.values import plan as plan_module
from sideeye_tui.values import plan_cache
from sideeye_tui.values.plan import CapturePlan, compile_plan
from tests.go.build import start_fixture

from .conftest import valuesfixture_binary
from .test_values_truth import _captures, check_against_truth

pytestmark = [pytest.mark.go]


def _comparable(plan: CapturePlan) -> CapturePlan:
    plan.reader = None
    plan.reader_factory = None
    return plan


def test_a_plan_survives_its_json(tmp_path: Path) -> None:
    exe = valuesfixture_binary("local")
    with start_fixture(exe) as fx:
        captures = _captures(fx.report)
    with GoBinary.open(str(exe), cache_dir=str(tmp_path)) as binary:
        plan = compile_plan(binary, captures)
        again = plan_cache.plan_from_json(plan_cache.plan_to_json(plan))
    assert plan.sites and plan.rtypes and plan.types is not None
    assert _comparable(again) == _comparable(plan)


def test_the_second_compile_comes_from_the_cache_and_keys_differ_by_spec(tmp_path: Path) -> None:
    exe = valuesfixture_binary("local")
    with start_fixture(exe) as fx:
        captures = _captures(fx.report)
    with GoBinary.open(str(exe), cache_dir=str(tmp_path)) as binary:
        first = plan_cache.compile_plan_cached(binary, captures, str(tmp_path))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(plan_cache, "compile_plan", _no_compile)
            cached = plan_cache.compile_plan_cached(binary, captures, str(tmp_path))
            assert cached.reader is None  # made on first use only
            fewer = dict(list(captures.items())[:1])
            assert plan_cache.plan_key(binary, fewer) != plan_cache.plan_key(binary, captures)
            with pytest.raises(AssertionError, match="compiled again"):
                plan_cache.compile_plan_cached(binary, fewer, str(tmp_path))
    assert _comparable(cached) == _comparable(first)


def _no_compile(*_: object) -> CapturePlan:
    raise AssertionError("compiled again")


@pytest.mark.root
def test_values_from_a_cached_plan_match_the_fixture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot with a cached plan (compile_plan not called) decodes every value as
    the fixture reports it, the types it did not read included (a reader made then)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with start_fixture(valuesfixture_binary("local")) as fx:
        captures = _captures(fx.report)
        first = capture_process(fx.pid, "ptrace", captures)
        assert first.error is None, first.error
        assert list((tmp_path / "sideeye-tui" / "plans").glob("*.json")), "no plan stored"
        monkeypatch.setattr(plan_cache, "compile_plan", _no_compile)
        monkeypatch.setattr(plan_module, "compile_plan", _no_compile)
        proc = capture_process(fx.pid, "ptrace", captures)
        assert proc.error is None, proc.error
        assert check_against_truth(proc, fx.report) >= 60
