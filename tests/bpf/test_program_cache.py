"""The compiled-program cache without the kernel: map-fd patching and BCC's type
descriptions as ctypes (raw_program.py), the file format (program_cache.py). The
kernel side: tests/capture/test_program_cache.py."""

from __future__ import annotations

import base64
import ctypes as ct
import json
import os
import stat
from pathlib import Path

import pytest

from sideeye_tui.bpf import program_cache as pc
from sideeye_tui.bpf import raw_program as rp


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return (
        bytes([code, (src << 4) | dst])
        + off.to_bytes(2, "little", signed=True)
        + (imm.to_bytes(4, "little", signed=True))
    )


def ld_map_fd(dst: int, fd: int) -> bytes:
    return insn(0x18, dst, 1, 0, fd) + insn(0, 0, 0, 0, 0)


def ld_imm64(dst: int, value: int) -> bytes:
    return insn(0x18, dst, 0, 0, value & 0xFFFFFFFF) + insn(0, 0, 0, 0, value >> 32)


CALL_LOOKUP = insn(0x85, imm=1)
EXIT = insn(0x95)


def program(fd_a: int, fd_b: int) -> bytes:
    """r1 = map a; r1 = a plain 64-bit constant whose low half is map a's fd (not a map
    load: left alone); r1 = map b; r2 = map a; call; exit."""
    return (
        ld_map_fd(1, fd_a)
        + ld_imm64(1, (3 << 32) | 7)
        + ld_map_fd(1, fd_b)
        + ld_map_fd(2, fd_a)
        + CALL_LOOKUP
        + EXIT
    )


def test_map_refs_found_and_patched() -> None:
    old = program(7, 9)
    refs = rp.find_map_refs(old, {7: 0, 9: 1})
    assert refs == ((0, 0), (4, 1), (6, 0))
    new = rp.patch(old, refs, [31, 5])
    assert new == program(31, 5)
    # Nothing but the immediates changed.
    diff = [i for i in range(len(old)) if old[i] != new[i]]
    assert {i // 8 for i in diff} == {0, 4, 6}
    assert all(4 <= i % 8 < 8 for i in diff)


def test_negative_and_large_fds_round_trip() -> None:
    old = program(3, 4)
    refs = rp.find_map_refs(old, {3: 0, 4: 1})
    assert (
        rp.find_map_refs(rp.patch(old, refs, [1_000_000, 2**31 - 1]), {1_000_000: 0, 2**31 - 1: 1})
        == refs
    )


def test_a_load_of_an_unknown_fd_is_uncacheable() -> None:
    with pytest.raises(rp.Uncacheable):
        rp.find_map_refs(program(7, 8), {7: 0})


@pytest.mark.parametrize("src", [2, 3, 4, 5, 6])
def test_other_pseudo_sources_are_uncacheable(src: int) -> None:
    code = insn(0x18, 1, src, 0, 7) + insn(0) + EXIT
    with pytest.raises(rp.Uncacheable):
        rp.find_map_refs(code, {7: 0})


def test_patch_refuses_a_ref_that_is_no_map_load() -> None:
    code = program(7, 9)
    with pytest.raises(ValueError):
        rp.patch(code, [(2, 0)], [5])  # the plain 64-bit constant
    with pytest.raises(ValueError):
        rp.patch(code, [(1, 0)], [5])  # the second half of a map load


def test_ragged_instructions_are_uncacheable() -> None:
    with pytest.raises(rp.Uncacheable):
        rp.find_map_refs(EXIT + b"\0", {})


def test_bcc_descriptions_as_ctypes() -> None:
    # As BCC 0.26 describes struct { u32 a; u64 b[3]; } and a nested anonymous union.
    packed = json.loads(
        '["s", [["a","unsigned int"], ["__pad_1","char",[4]], '
        '["b","unsigned long long", [3]]], "struct_packed"]'
    )
    s = rp.ctype_of(packed)
    assert ct.sizeof(s) == 32
    assert s.b.offset == 8
    v = s(1)
    v.b[2] = 2**64 - 1
    assert (v.a, v.b[2]) == (1, 2**64 - 1)

    nested = [
        "outer",
        [
            ["flag", "unsigned int", 1],
            ["rest", "unsigned int", 31],
            ["", [["x", "int"], ["y", "long long"]], "union"],
            ["inner", [["p", "unsigned short"]], "struct"],
        ],
        "struct",
    ]
    o = rp.ctype_of(nested)
    assert ct.sizeof(o) == 24
    x = o()
    x.flag, x.rest, x.y, x.inner.p = 1, 5, -2, 65535
    assert (x.flag, x.rest, x.x, x.y, x.inner.p) == (1, 5, -2, -2, 65535)
    assert rp.ctype_of("unsigned int") is ct.c_uint


@pytest.mark.parametrize("desc", ["float128", ["s", [["a", "nope"]]], ["s", "x"], 5])
def test_unknown_descriptions_are_uncacheable(desc: object) -> None:
    with pytest.raises(rp.Uncacheable):
        rp.ctype_of(desc)


def sample() -> rp.Compiled:
    maps = (
        rp.MapDef("cursors", 2, 4, 32, 4, 0, "int", ["s", [["a", "unsigned int"]], "struct"]),
        rp.MapDef("records", 27, 0, 0, 4096, 0, "int", "unsigned int"),
    )
    code = program(40, 41)
    fn = rp.FunctionDef("walk", code, rp.find_map_refs(code, {40: 0, 41: 1}))
    return rp.Compiled("GPL", 393664, maps, (fn,))


def test_file_round_trip_and_mode(tmp_path: Path) -> None:
    path = str(tmp_path / "programs" / "k.json")
    pc.write(path, sample(), "k")
    assert pc.read(path, "k") == sample()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "programs").st_mode) == 0o700
    assert pc.read(path, "another key") is None


def flip_last_bit(insns_b64: str) -> str:
    """A bit flipped in the exit's immediate: still a well-formed program, not the same."""
    insns = bytearray(base64.b64decode(insns_b64))
    insns[-1] ^= 1
    return base64.b64encode(bytes(insns)).decode()


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update(format=pc.FORMAT + 1),
        lambda d: d["functions"][0].update(insns="!!"),
        lambda d: d["functions"][0].update(insns=flip_last_bit(d["functions"][0]["insns"])),
        lambda d: d["functions"][0].update(map_refs=[[1, 0]]),  # not a map load
        lambda d: d["functions"][0].update(map_refs=[[0, 9]]),  # no such map
        lambda d: d["maps"][0].update(leaf_desc=["s", [["a", "nope"]]]),
        lambda d: d.pop("maps"),
    ],
)
def test_a_damaged_file_is_ignored(tmp_path: Path, damage: object) -> None:
    data = pc.to_json(sample(), "k")
    damage(data)  # type: ignore[operator]
    path = tmp_path / "k.json"
    path.write_text(json.dumps(data))
    assert pc.read(str(path), "k") is None
    path.write_text('{"format": 1, "key": "k", "maps": [')  # truncated
    assert pc.read(str(path), "k") is None


def test_old_entries_are_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pc, "MAX_ENTRIES", 3)
    names = [f"{i:064x}.json" for i in range(6)]
    (tmp_path / "boot-1234.json").write_text("{}")  # not a program: never pruned
    for i, name in enumerate(names[:5]):
        pc.write(str(tmp_path / name), sample(), name)
        os.utime(tmp_path / name, (1000 + i, 1000 + i))
    pc.write(str(tmp_path / names[5]), sample(), names[5])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["boot-1234.json", *names[3:]])


def test_boot_facts_are_computed_once_per_boot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pc.ENV, str(tmp_path))
    calls: list[int] = []

    def compute() -> bool:
        calls.append(1)
        return True

    assert pc.boot_fact("x", compute) is True
    assert pc.boot_fact("x", compute) is True
    assert pc.boot_fact("y", lambda: 7) == 7
    assert calls == [1]
    (path,) = tmp_path.glob("boot-*.json")
    assert json.loads(path.read_text()) == {"x": True, "y": 7}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("garbage")  # a damaged file: computed again
    assert pc.boot_fact("x", compute) is True
    assert calls == [1, 1]
    monkeypatch.setattr(pc, "_boot_id", lambda: "another-boot")
    assert pc.boot_fact("x", compute) is True
    assert calls == [1, 1, 1]
    monkeypatch.setenv(pc.ENV, "off")
    assert pc.boot_fact("x", compute) is True
    assert calls == [1, 1, 1, 1]


def test_uprobe_links_support_is_what_kallsyms_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sideeye_tui.bpf import uprobe_links

    monkeypatch.setenv(pc.ENV, str(tmp_path))
    truth = uprobe_links._kallsyms_has_uprobe_multi()
    assert uprobe_links.supported.__wrapped__() == truth
    monkeypatch.setattr(uprobe_links, "_kallsyms_has_uprobe_multi", lambda: not truth)
    assert uprobe_links.supported.__wrapped__() == truth  # remembered for this boot


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pc.ENV, "off")
    assert pc.cache_dir() is None
    monkeypatch.setenv(pc.ENV, "/somewhere")
    assert pc.cache_dir() == "/somewhere"
    monkeypatch.delenv(pc.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert pc.cache_dir() == "/xdg/sideeye-tui/programs"


def test_key_covers_text_bcc_and_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    a = pc.cache_key(b"int walk(void *ctx) { return 0; }")
    assert a == pc.cache_key(b"int walk(void *ctx) { return 0; }")
    assert a != pc.cache_key(b"int walk(void *ctx) { return 1; }")
    monkeypatch.setattr(pc, "_bcc_version", lambda: "0.0.1")
    assert a != pc.cache_key(b"int walk(void *ctx) { return 0; }")
