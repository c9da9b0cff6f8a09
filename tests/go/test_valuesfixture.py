"""valuesfixture builds with every toolchain, parks its holders and reports their values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .build import TOOLCHAINS, VALUESFIXTURE, build_go, go_binary, start_fixture

pytestmark = [
    pytest.mark.go,
    pytest.mark.skipif(go_binary() is None, reason="no go command"),
]

HOLDERS = {
    "scalars/a": "main.holdScalars",
    "scalars/b": "main.holdScalars",
    "strings": "main.holdStrings",
    "times": "main.holdTimes",
    "pointers": "main.holdPointers",
    "aggregates": "main.holdAggregates",
    "maps": "main.holdMaps",
    "interfaces": "main.holdInterfaces",
    "chans": "main.holdChans",
    "generic/int": "main.holdGeneric[...]",
    "generic/string": "main.holdGeneric[...]",
    "method": "main.(*Server).handle",
    "closure": "main.startClosure.func1",
    "outer": "main.holdOuter",
    "inner": "main.holdInner",
    "shadow": "main.holdShadow",
}


def holders(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in report["holders"]}


def check_report(r: dict[str, Any], pid: int) -> None:
    assert r["program"] == "valuesfixture" and r["pid"] == pid
    assert r["settled"] is True
    hs = holders(r)
    assert {name: h["function"] for name, h in hs.items()} == HOLDERS
    goids = [h["goid"] for h in r["holders"] if h["innermost"]]
    assert len(goids) == len(set(goids)) == r["goroutines"]
    assert hs["outer"]["goid"] == hs["inner"]["goid"] and not hs["outer"]["innermost"]
    for h in r["holders"]:
        assert sorted(h["values"]) == sorted(h["order"]), h["name"]

    a, b = hs["scalars/a"]["values"], hs["scalars/b"]["values"]
    assert (a["i8"], a["u64"], a["f32"], a["c128"], a["d"]) == (
        -8,
        6400000000,
        1.5,
        [1.5, -2.5],
        "1.5s",
    )
    assert (b["u64"], b["f64"], b["f32"], b["c128"]) == (2**64 - 1, "NaN", "-Inf", ["+Inf", 0.125])
    assert (a["color"], b["color"], b["d"], a["up"]) == (3, -1, "-1h30m0s", 0xDEADBEEF)
    assert set(hs["strings"]["addresses"]) == {"words"}
    assert int(hs["strings"]["addresses"]["words"], 16) > 0

    s = hs["strings"]
    assert s["values"]["long"] == "0123456789abcdefghij" * 100
    assert s["values"]["invalid"] == "ok\ufffdok"
    assert s["values"]["raw"] == list(b"bytes\x00\xff")
    t = hs["times"]["values"]
    assert t["utc"] == "2026-01-02T03:04:05.123456789Z"
    assert t["zoned"] == "2025-06-07T02:39:10.0000005Z"  # 08:09:10 at +05:30
    assert s["cut"] == ["long"]

    p = hs["pointers"]
    req = p["values"]["req"]
    assert req["User"] == {"Name": "ann", "Age": 41} and req["Tags"] == ["a", "bb", "ccc"]
    assert req["Meta"] == {"k": "v", "trace": "abc123"}
    assert p["values"]["nilReq"] is None and p["values"]["pp"] == {"Name": "ann", "Age": 41}
    node, depth = p["values"]["list"], 0
    while node is not None:
        depth += 1
        assert node["Val"] == depth
        node = node["Next"]
    assert depth == 20
    assert set(p["values"]["cycle"]["Next"]) == {"$cycle"}
    assert sorted(p["cut"]) == ["cycle", "list"]

    g = hs["aggregates"]["values"]
    assert g["settings"] == {
        "Base": {"Kind": "cfg", "Version": 3},
        "Name": "primary",
        "limit": 10,
        "enabled": True,
        "ratio": 0.75,
    }
    assert g["bigInts"] == [i * i for i in range(1000)] and g["nilSlice"] is None
    assert g["emptySlice"] == [] and g["users"][1] is None and g["points"][1] == {"X": -3, "Y": -4}
    assert hs["aggregates"]["cut"] == ["bigInts"]
    assert g["ids"] == [11, 22]

    m = hs["maps"]["values"]
    assert m["names"] == [[-1, "minus"], [10, "ten"], [2, "two"]]
    assert m["bigMap"] == sorted(([i, -i] for i in range(1000)), key=lambda kv: str(kv[0]))
    assert (m["emptyMap"], m["nilMap"], m["users"]["none"]) == ({}, None, None)
    assert hs["maps"]["cut"] == ["bigMap"]
    assert m["labels"] == {"env": "test"}

    i = hs["interfaces"]["values"]
    assert i["anyInt"] == {"$type": "int", "$value": 42}
    assert i["anyStruct"]["$type"] == "main.User" and i["anyPtr"]["$type"] == "*main.User"
    assert i["errBoom"] == {"$type": "*errors.errorString", "$value": {"s": "boom"}}
    assert i["errCustom"] == {"$type": "*main.MyErr", "$value": {"Code": 7}}
    assert i["errNil"] is None and i["anyNil"] is None
    assert i["stringer"] == {"$type": "main.Temp", "$value": 21.5}

    c = hs["chans"]["values"]
    assert c["buffered"] == {"len": 3, "cap": 8, "closed": False}
    assert c["closed"] == {"len": 1, "cap": 2, "closed": True}
    assert (c["nilChan"], c["fn"], c["nilFn"]) == (None, "main.answer", None)

    assert hs["generic/int"]["values"] == {"v": 123}
    assert hs["generic/string"]["values"] == {"v": "generic string"}
    assert hs["method"]["values"]["s"] == {"Name": "api", "handled": 0}
    assert hs["closure"]["values"] == {"count": 5, "name": "closed-over", "hits": 10}
    assert hs["inner"]["values"] == {"innerID": 103, "innerNote": "inner-102"}
    assert hs["shadow"]["values"] == {"x": "40!", "y": 9} and hs["shadow"]["shadowed"] == {"x": 4}


@pytest.mark.parametrize("toolchain", TOOLCHAINS, ids=lambda t: t or "local")
def test_valuesfixture_each_toolchain(toolchain: str | None, tmp_path: Path) -> None:
    binary = build_go(VALUESFIXTURE, toolchain)
    out = tmp_path / "report.json"
    with start_fixture(binary, "-lifetime", "3m", "-report", str(out)) as fx:
        if toolchain is not None:
            assert fx.report["go_version"] == toolchain
        check_report(fx.report, fx.pid)
        assert json.loads(out.read_text()) == fx.report
        assert fx.proc.poll() is None
