"""The --json contract's numbers and --for's parsing (pure functions)."""

from __future__ import annotations

import pytest

from sideeye_tui.cli import parse_duration
from sideeye_tui.errors import SideEyeError
from sideeye_tui.events.display import end_record, json_record, max_ns, quantile_ns
from sideeye_tui.model import ProbeInfo, ProbeSecond


def test_quantiles_are_bucket_upper_bounds() -> None:
    # 90 durations in [2^10, 2^11) ns, 9 in [2^20, 2^21), 1 in [2^30, 2^31)
    buckets = ((10, 90), (20, 9), (30, 1))
    assert quantile_ns(buckets, 0.5) == 2**11
    assert quantile_ns(buckets, 0.9) == 2**11
    assert quantile_ns(buckets, 0.99) == 2**21
    assert quantile_ns(buckets, 1.0) == 2**31
    assert max_ns(buckets) == 2**31
    assert quantile_ns((), 0.5) is None and max_ns(()) is None


def test_json_record_keys() -> None:
    probe = ProbeInfo(3, 42, "function", "main.handle")
    s = ProbeSecond(3, 42, 12.5, 7, 6, 5, 2, 1, 70, 50, 20, ((12, 6),))
    r = json_record(1, probe, s)
    assert r["type"] == "probe" and r["trace_id"] == 1 and r["pid"] == 42
    assert (r["probe_id"], r["location"], r["kind"], r["t"]) == (3, "main.handle", "function", 12.5)
    assert (r["hits"], r["hits_total"], r["kept_total"], r["dropped_total"]) == (7, 70, 50, 20)
    assert r["durations"] == {"12": 6} and r["p50_ns"] == r["max_ns"] == 2**13
    end = end_record(1, "duration", 50, 20, 3, 1)
    assert end == {
        "type": "end",
        "trace_id": 1,
        "reason": "duration",
        "events_kept": 50,
        "events_dropped": 20,
        "in_flight": 3,
        "inflight_evicted": 1,
    }


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0), ("7", 7.0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "-3s", "0", "s", "infs", "nan"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(SideEyeError, match="--for"):
        parse_duration(bad)
