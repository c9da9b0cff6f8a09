"""eventfixture builds with every toolchain and tells a self-consistent truth, with no
debugger involved: a round is triggered by hand (SIGUSR1) and the fixture's own clock
and runtime.Stack are the only witnesses."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from .build import EVENTFIXTURE, TOOLCHAINS, build_go, go_binary, start_fixture

pytestmark = [
    pytest.mark.go,
    pytest.mark.skipif(go_binary() is None, reason="no go command"),
]

COUNTS = {
    "main.handle": 10,
    "main.recurse": 50,
    "main.mayPanic": 6,
    "main.growStack": 3,
    "main.sumOf[...]": 5,
    "main.small": 100,
}


def wait_truth(path: Path, round_: int, timeout: float = 30.0) -> dict[str, Any]:
    """The truth of round `round_` once the fixture has written it."""
    deadline = time.monotonic() + timeout
    while True:
        if path.exists():
            truth = json.loads(path.read_text())
            assert isinstance(truth, dict)
            if truth["round"] >= round_:
                return truth
        assert time.monotonic() < deadline, f"no truth of round {round_} in {path}"
        time.sleep(0.02)


def function_symbols(binary: Path) -> set[str]:
    with binary.open("rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection)
        return {s.name for s in symtab.iter_symbols() if s["st_info"]["type"] == "STT_FUNC"}


@pytest.mark.parametrize("toolchain", TOOLCHAINS, ids=lambda t: t or "local")
def test_eventfixture_truth(toolchain: str | None, tmp_path: Path) -> None:
    binary = build_go(EVENTFIXTURE, toolchain)
    truth_path = tmp_path / "truth.json"
    with start_fixture(binary, "-truth", str(truth_path), "-lifetime", "3m") as fx:
        r = fx.report
        assert r["schema"] == 1 and r["program"] == "eventfixture" and r["pid"] == fx.pid
        if toolchain:
            assert r["go_version"] == toolchain
        syms = function_symbols(binary)
        assert sorted(r["generic_symbols"]) == [
            "main.sumOf[go.shape.int]",
            "main.sumOf[go.shape.string]",
        ]
        assert r["inlined"] == {"main.small": True}
        assert "main.small" not in syms and "main.callSmall" in syms
        for name in ("handle", "recurse", "panic", "grow", "loop", "tick", "sub"):
            assert r["functions"][name] in syms, name
        # The marked lines are where the source says they are.
        for name, ref in r["lines"].items():
            lines = Path(ref["file"]).read_text().splitlines()
            assert f"// LINE:{name}" in lines[ref["line"] - 1], name
        assert set(r["lines"]) == {"loop", "nocode", "sub"}

        for round_ in (1, 2):
            os.kill(fx.pid, signal.SIGUSR1)
            t = wait_truth(truth_path, round_)
            assert t["round"] == round_ and t["pid"] == fx.pid
            assert t["started_unix_ns"] < t["ended_unix_ns"]
            assert {k: len(v) for k, v in t["functions"].items()} == COUNTS
            goids = set()
            for name, calls in t["functions"].items():
                assert len({c["goid"] for c in calls}) == (3 if name == "main.growStack" else 1)
                goids |= {c["goid"] for c in calls}
                for c in calls:
                    if name != "main.small":
                        assert 0 < c["sleep_ns"] <= c["measured_ns"], (name, c)
            assert r["main_goid"] not in goids
            handle = t["functions"]["main.handle"]
            assert [c["args"]["req"]["ID"] for c in handle] == list(range(100, 110))
            assert [c["results"]["~r1"] is None for c in handle] == [
                c["args"]["n"] % 2 == 0 for c in handle
            ]
            assert handle[0]["args"]["tags"] is None and handle[4]["args"]["tags"] == []
            assert handle[-1]["args"]["req"]["User"] is None
            rec = t["functions"]["main.recurse"]
            assert [c["args"]["n"] for c in rec] == list(range(1, 51))
            durations = [c["measured_ns"] for c in rec]
            assert durations == sorted(durations) and len(set(durations)) == 50
            panics = t["functions"]["main.mayPanic"]
            assert [c["returned"] for c in panics] == [n % 2 == 0 for n in range(6)]
            assert all(c["stack_moved"] is True for c in t["functions"]["main.growStack"])
            generic = t["functions"]["main.sumOf[...]"]
            assert [c["instantiation"].rsplit("[", 1)[1] for c in generic] == [
                "go.shape.int]"
            ] * 3 + ["go.shape.string]"] * 2
            assert t["lines"]["loop"]["count"] == 37 and t["lines"]["sub"]["count"] == 1
        assert fx.proc.poll() is None
