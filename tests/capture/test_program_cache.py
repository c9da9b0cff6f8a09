"""The compiled-program cache against the kernel and the fixtures' truth.

A miss compiles with BCC and loads what it saved; a hit loads the file without BCC's
compiler. Both must give the snapshot and the values the fixtures report about
themselves, and the maps must have the same shapes as BCC's own tables (the probes
write them through those ctypes classes)."""

from __future__ import annotations

import ctypes as ct
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sideeye_tui.bpf import program_cache, raw_program, stack_probe, uprobe_links, value_probe
from sideeye_tui.capture.snapshot import capture_process
from sideeye_tui.dwarf.binary import GoBinary
from sideeye_tui.values.plan import compile_plan
from tests.go.build import start_fixture
from tests.values.conftest import valuesfixture_binary
from tests.values.test_values_truth import _captures, check_against_truth

from .support import PROJECT_ROOT, PYTHON, snapfixture_binary, user_goids

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go]


@pytest.fixture
def misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A fresh cache directory; the list grows by one at each compile (a miss)."""
    monkeypatch.setenv(program_cache.ENV, str(tmp_path / "programs"))
    count: list[int] = []
    extract = program_cache.extract

    def counting(module: Any) -> raw_program.Compiled:
        count.append(1)
        return extract(module)

    monkeypatch.setattr(program_cache, "extract", counting)
    return count


def cache_files(tmp_path: Path) -> list[Path]:
    """The compiled programs (not the boot-<id>.json facts kept alongside)."""
    files = (tmp_path / "programs").glob("*.json")
    return sorted(p for p in files if program_cache._ENTRY.fullmatch(p.name))


def test_snapshot_cold_warm_and_after_corruption(misses: list[int], tmp_path: Path) -> None:
    with start_fixture(snapfixture_binary("local"), "-park", "200") as fx:
        expected = user_goids(fx.report)
        runs = []
        for step in ("cold", "warm", "corrupt"):
            if step == "corrupt":
                (path,) = cache_files(tmp_path)
                path.write_text(path.read_text()[:100])
            snap = capture_process(fx.pid, "ebpf")
            assert snap.error is None, (step, snap.error)
            got = {g.goid for g in snap.goroutines}
            assert sorted(expected - got) == [], step
            assert snap.walk == "early", step  # the tracker's program ran too
            runs.append(len(misses))
        assert runs == [1, 1, 2]  # compiled, loaded from the file, rebuilt
        assert len(cache_files(tmp_path)) == 1
        assert program_cache.read(str(cache_files(tmp_path)[0]), cache_files(tmp_path)[0].stem)


def test_values_cold_and_warm(misses: list[int]) -> None:
    with start_fixture(valuesfixture_binary("local")) as fx:
        for step, want_misses in (("cold", 1), ("warm", 1)):
            proc = capture_process(fx.pid, "ebpf", _captures(fx.report))
            assert proc.error is None, (step, proc.error)
            assert check_against_truth(proc, fx.report) >= 60, step
            assert len(misses) == want_misses, step


def _fields(t: Any) -> list[tuple[str, int, int, str]]:
    """A ctypes type's shape: (path, offset, size, type name), recursively; a field's
    size is its descriptor's (bit fields encode their width and bit offset there)."""
    out = [("", 0, ct.sizeof(t), t.__name__)]
    if hasattr(t, "_length_"):  # an array: its element's shape, and its length
        out += [(f"[{t._length_}]{p}", o, s, n) for p, o, s, n in _fields(t._type_)]
    for spec in getattr(t, "_fields_", []):
        name, ftype = spec[0], spec[1]
        field = getattr(t, name)
        out.append((name, field.offset, field.size, ftype.__name__))
        out += [(f"{name}.{p}", field.offset + o, s, n) for p, o, s, n in _fields(ftype)[1:]]
    return out


@pytest.mark.parametrize("values", [False, True], ids=["stacks", "values"])
def test_maps_and_programs_match_bcc(values: bool, tmp_path: Path) -> None:
    import bcc

    binary = GoBinary.open(str(valuesfixture_binary("local")), cache_dir=str(tmp_path))
    dims = None
    if values:
        with start_fixture(valuesfixture_binary("local")) as fx:
            captures = _captures(fx.report)
        plan = compile_plan(binary, captures)
        assert plan.sites
        dims = value_probe.ValueDims.of(plan)
    limits = stack_probe.ProbeLimits(max_depth=64, copies=2, ringbuf_pages=64)
    text = stack_probe.generate(binary.layout, limits, dims).encode()
    theirs = bcc.BPF(text=text)
    ours = raw_program.LoadedProgram(program_cache.extract(theirs.module))
    try:
        names = [m.name for m in ours._compiled.maps]
        assert {"cursors", "threads", "chain", "records", "tracker"} <= set(names)
        assert values == ("vroots" in names)
        for name in names:
            mine, bccs = ours[name.encode()], theirs[name.encode()]
            assert _fields(mine.Key) == _fields(bccs.Key), name
            assert _fields(mine.Leaf) == _fields(bccs.Leaf), name
        functions = [f.name for f in ours._compiled.functions]
        assert {"walk", "track"} <= set(functions)
        assert values == ("values" in functions)
        for attach_type in (-1, uprobe_links.ATTACH_TYPE):
            again = raw_program.LoadedProgram(ours._compiled)
            try:
                for name in functions:  # the verifier accepts each, with the new fds
                    assert again.load_func(name.encode(), again.KPROBE, attach_type).fd > 0
            finally:
                again.cleanup()
    finally:
        ours.cleanup()
        theirs.cleanup()


def test_tables_read_and_write_through_the_kernel(tmp_path: Path) -> None:
    """Item get/set/delete on a hash and an array, the prog array, and the ring buffer."""
    text = b"""
    struct pair { u32 a; u64 b; };
    BPF_HASH(h, u32, struct pair, 16);
    BPF_ARRAY(arr, u64, 4);
    BPF_PROG_ARRAY(chain, 2);
    BPF_RINGBUF_OUTPUT(out, 1);
    int walk(struct pt_regs *ctx) {
        int k = 0;
        u64 *v = arr.lookup(&k);
        if (v) out.ringbuf_output(v, sizeof(*v), 0);
        chain.call(ctx, 1);
        return 0;
    }
    """
    import bcc

    calls: list[Callable[[bytes], Any]] = []

    def compile_with(t: bytes) -> Any:
        calls.append(compile_with)
        return bcc.BPF(text=t)

    os.environ[program_cache.ENV] = str(tmp_path)
    try:
        cold = program_cache.load(text, compile_with)
        warm = program_cache.load(text, compile_with)
    finally:
        del os.environ[program_cache.ENV]
    assert len(calls) == 1
    for prog in (cold, warm):
        try:
            h, arr = prog[b"h"], prog[b"arr"]
            h[h.Key(7)] = h.Leaf(a=1, b=2**40)  # BCC pads: __pad_1 between
            assert (h[h.Key(7)].a, h[h.Key(7)].b) == (1, 2**40)
            del h[h.Key(7)]
            with pytest.raises(KeyError):
                h[h.Key(7)]
            arr[ct.c_int(3)] = ct.c_uint64(99)
            assert arr[3].value == 99
            del arr[3]
            assert arr[3].value == 0
            fn = prog.load_func(b"walk", prog.KPROBE)
            assert prog.load_func(b"walk", prog.KPROBE) is fn
            prog[b"chain"][ct.c_int(1)] = ct.c_int(fn.fd)
            got: list[bytes] = []

            def on_record(_ctx: Any, data: Any, size: int, got: list[bytes] = got) -> int:
                got.append(ct.string_at(data, size))
                return 0

            prog[b"out"].open_ring_buffer(on_record)
            prog.ring_buffer_consume()
            assert got == []  # nothing ran the program
            with pytest.raises(KeyError):
                prog[b"nope"]
        finally:
            prog.cleanup()
            prog.cleanup()  # twice: nothing left to close


def test_a_hit_needs_no_compiler(tmp_path: Path) -> None:
    """With the program cached, a capture imports neither bcc nor libbcc (LLVM)."""
    code = (
        "import sys\n"
        "from sideeye_tui.capture.snapshot import capture_process\n"
        "snap = capture_process(int(sys.argv[1]), 'ebpf')\n"
        "assert snap.error is None, snap.error\n"
        "maps = open('/proc/self/maps').read()\n"
        "print(len(snap.goroutines), 'bcc' in sys.modules, 'libbcc.so' in maps)\n"
    )
    env = {**os.environ, program_cache.ENV: str(tmp_path)}
    with start_fixture(snapfixture_binary("local")) as fx:
        runs = [
            subprocess.run(
                [str(PYTHON), "-c", code, str(fx.pid)],
                env=env,
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            for _ in range(2)
        ]
        expected = len(user_goids(fx.report))
    assert [r[1:] for r in runs] == [["True", "True"], ["False", "False"]]
    assert all(int(r[0]) >= expected for r in runs)
