"""The events probe's structs are defined once in C (bpf/c/event_probe.c) and mirrored
once in ctypes (bpf/event_probe.py). BCC reads the C struct of every map's key and
value itself: the mirror must match that reading field by field (name, offset, size),
or records would be read with shifted fields."""

from __future__ import annotations

import ctypes as ct
import re

import pytest

from sideeye_tui.bpf import event_probe as ep


def c_struct_fields(name: str) -> list[str]:
    """Field names of `struct name` in the C file, in order."""
    src = ep.c_source()
    m = re.search(r"struct " + name + r" \{(.*?)\n\};", src, re.S)
    assert m is not None, name
    fields = []
    for line in m[1].splitlines():
        line = line.split("//")[0].strip()
        if not line:
            continue
        decl = re.match(r"(?:struct )?\w+ (\w+)(?:\[\w+\])?;", line)
        assert decl is not None, line
        fields.append(decl[1])
    return fields


MIRRORS = [
    ("event", ep.Event),
    ("site", ep.SiteValue),
    ("site_probe", ep.SiteProbe),
    ("site_key", ep.SiteKey),
    ("counters", ep.Counters),
    ("budget", ep.Budget),
    ("vpiece", ep.VPiece),
    ("vop", ep.VOp),
    ("vexpr", ep.VExpr),
    ("vslot", ep.VSlot),
    ("vctype", ep.VCType),
    ("vrec", ep.VRec),
    ("vcond", ep.VCond),
    ("vsmallroot", ep.VSmallRoot),
    ("vsmall", ep.VSmall),
]


@pytest.mark.parametrize(("c_name", "mirror"), MIRRORS, ids=[m[0] for m in MIRRORS])
def test_field_names_and_order_match_the_c_file(c_name: str, mirror: type[ct.Structure]) -> None:
    assert [f[0] for f in mirror._fields_] == c_struct_fields(c_name)


def test_header_defines_what_the_c_uses() -> None:
    text = ep.program_text(ep.EventLimits())
    for name in (
        "MAX_SITES",
        "MAX_PROBES",
        "MAX_FRAMES",
        "INFLIGHT_MAX",
        "RINGBUF_PAGES",
        "BUCKETS",
        "SITE_PROBES",
    ):
        assert re.search(rf"^#define {name} \d+$", text, re.M), name
        assert name in ep.c_source()
    # the C masks indexes with these
    for n in (ep.MAX_FRAMES, ep.QUEUE, ep.COND_STR, ep.MAX_PIECES, ep.MAX_SLOTS):
        assert n & (n - 1) == 0, n


def _bcc_layout(leaf: type[ct.Structure]) -> list[tuple[str, int, int]]:
    return ep.layout(leaf)


@pytest.mark.root
@pytest.mark.bpf
def test_mirrors_match_bccs_reading_of_the_c_structs() -> None:
    from sideeye_tui.bpf.loader import EventProgram

    program = EventProgram(ep.program_text(ep.EventLimits(max_sites=16, ringbuf_pages=16)))
    try:
        bpf = program.bpf
        assert ep.layout(bpf[b"layout_check"].Leaf) == ep.layout(ep.Event)
        assert ep.layout(bpf[b"sites"].Key) == ep.layout(ep.SiteKey)
        # a nested array of structs: compare the outer layout and the element's
        site_leaf = bpf[b"sites"].Leaf
        assert ep.layout(site_leaf) == ep.layout(ep.SiteValue)
        assert ct.sizeof(site_leaf) == ct.sizeof(ep.SiteValue)
        assert ep.layout(bpf[b"counts"].sLeaf) == ep.layout(ep.Counters)
        assert ep.layout(bpf[b"budgets"].Leaf) == ep.layout(ep.Budget)
        assert ct.sizeof(bpf[b"layout_check"].Leaf) == ct.sizeof(ep.Event)
        for table, mirror in (
            (b"vexprs", ep.VExpr),
            (b"vctypes", ep.VCType),
            (b"vrec_check", ep.VRec),
            (b"vconds", ep.VCond),
            (b"vsmall_check", ep.VSmall),
        ):
            leaf = bpf[table].Leaf
            assert ep.layout(leaf) == ep.layout(mirror), table
            assert ct.sizeof(leaf) == ct.sizeof(mirror), table
    finally:
        program.close()
