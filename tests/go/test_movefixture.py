"""movefixture builds with every toolchain and tells a self-consistent truth before and
after its move, with no debugger involved: the move is triggered by hand (SIGUSR1) and
the fixture's own runtime.Stack view is the only witness."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from .build import MOVEFIXTURE, TOOLCHAINS, build_go, go_binary, start_fixture

pytestmark = [
    pytest.mark.go,
    pytest.mark.skipif(go_binary() is None, reason="no go command"),
]

COUNTS = {"stay": 100, "move": 20, "exit": 5, "spawn": 10}
ARGS = tuple(a for k, n in COUNTS.items() for a in (f"-{k}", str(n))) + ("-lifetime", "3m")
MOVED_TIMEOUT_S = 20.0


def wait_for_json(path: Path, timeout: float = MOVED_TIMEOUT_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"no move report in {path} after {timeout:.0f} s"
        time.sleep(0.02)
    report = json.loads(path.read_text())
    assert isinstance(report, dict)
    return report


def helper_goids(report: dict[str, Any]) -> set[int]:
    return {h["goid"] for h in report["helpers"]}


def check_ready(r: dict[str, Any], pid: int) -> None:
    assert r["schema"] == 1 and r["program"] == "movefixture"
    assert r["pid"] == pid
    assert r["settled"] is True
    groups = [r[name] for name in ("stay", "move", "exit")]
    for name in ("stay", "move", "exit"):
        assert len(r[name]) == COUNTS[name], name
        assert r[name] == sorted(r[name]), name
    ids = [i for g in groups for i in g]
    assert len(ids) == len(set(ids)), "a goid is in two groups"
    # main (goid 1) and os/signal.loop, nothing else
    helpers = {h["goid"]: h for h in r["helpers"]}
    assert 1 in helpers and "main.main" in helpers[1]["frames"]
    assert [h["goid"] for h in r["helpers"] if "os/signal.loop" in h["frames"]] != []
    assert len(helpers) == 2, r["helpers"]
    assert not helpers.keys() & set(ids)
    assert r["num_goroutine"] == len(ids) + len(helpers)
    assert r["functions"] == {
        "stay": "main.stayer",
        "move": "main.beforeMove",
        "moved": "main.afterMove",
        "exit": "main.leaver",
        "spawn": "main.newcomer",
    }
    assert r["wait_reasons"]["moved"] == "select"


def check_moved(m: dict[str, Any], ready: dict[str, Any]) -> None:
    assert m["schema"] == 1 and m["program"] == "movefixture"
    assert m["pid"] == ready["pid"]
    assert m["settled"] is True
    for name in ("stay", "move", "exit"):
        assert m[name] == ready[name], name
    spawn = m["spawn"]
    assert len(spawn) == COUNTS["spawn"] and spawn == sorted(spawn)
    before = {i for name in ("stay", "move", "exit") for i in ready[name]}
    assert not set(spawn) & before, "goids are never reused"
    assert helper_goids(m) == helper_goids(ready)
    assert m["num_goroutine"] == len(m["stay"]) + len(m["move"]) + len(spawn) + 2
    assert m["runtime_states"] == {
        "stay": {"chan receive": COUNTS["stay"]},
        "move": {"select": COUNTS["move"]},
        "exit": {"<missing>": COUNTS["exit"]},
        "spawn": {"chan receive": COUNTS["spawn"]},
    }


@pytest.mark.parametrize("toolchain", TOOLCHAINS, ids=lambda t: t or "local")
def test_movefixture_moves_on_sigusr1(toolchain: str | None, tmp_path: Path) -> None:
    moved = tmp_path / "moved.json"
    with start_fixture(build_go(MOVEFIXTURE, toolchain), *ARGS, "-moved", str(moved)) as fx:
        ready = fx.report
        if toolchain is not None:
            assert ready["go_version"] == toolchain
        check_ready(ready, fx.pid)
        time.sleep(0.2)
        assert not moved.exists(), "moved before the signal"
        os.kill(fx.pid, signal.SIGUSR1)
        report = wait_for_json(moved)
        check_moved(report, ready)
        assert not Path(f"{moved}.tmp").exists()
        # A second signal is dropped: no second move, no death by SIGUSR1.
        first = moved.read_bytes()
        os.kill(fx.pid, signal.SIGUSR1)
        time.sleep(0.3)
        assert fx.proc.poll() is None
        assert moved.read_bytes() == first


def test_movefixture_stripped_moves(tmp_path: Path) -> None:
    moved = tmp_path / "moved.json"
    binary = build_go(MOVEFIXTURE, stripped=True)
    with start_fixture(binary, *ARGS, "-moved", str(moved)) as fx:
        check_ready(fx.report, fx.pid)
        os.kill(fx.pid, signal.SIGUSR1)
        check_moved(wait_for_json(moved), fx.report)
