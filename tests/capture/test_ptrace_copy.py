"""The ptrace backend copies in the pause and unwinds after the resume.

What it reads it reads while the process is stopped: unwinding the copies reads
nothing more (snapfixture's 600-deep recursion is followed in the pause, its stack being
deeper than the copy), and gives what unwinding in the pause gives. The page reader of
the value chase answers as a read of the process would; the garbage collector is off
while any pause runs."""

from __future__ import annotations

import ctypes
import gc
import mmap
import os
import threading
from collections.abc import Iterator

import pytest

from sideeye_tui.capture import linux, pause
from sideeye_tui.capture.ptrace_walk import PtraceWalker
from sideeye_tui.capture.snapshot import MAX_DEPTH, _thread_regs
from sideeye_tui.dwarf.binary import GoBinary
from tests.go.build import start_fixture

from .support import snapfixture_binary, user_goids

PAGE = mmap.PAGESIZE


@pytest.mark.root
@pytest.mark.go
def test_unwinding_the_copies_reads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    with start_fixture(snapfixture_binary("local"), "-park", "300", "-lifetime", "2m") as fx:
        binary = GoBinary.open(f"/proc/{fx.pid}/exe")
        try:
            walker = PtraceWalker(fx.pid, binary.layout, MAX_DEPTH)
            with pause.realtime():
                paused = pause.pause(fx.pid)
                try:
                    threads = {t.tid: t for t in _thread_regs(paused)}
                    copied = walker.copy(threads)
                    in_pause, heads_in_pause = PtraceWalker(fx.pid, binary.layout, MAX_DEPTH).walk(
                        threads
                    )
                finally:
                    pause.resume(paused)
        finally:
            binary.close()

        def no_read(*args: object) -> bytes:
            raise AssertionError("a read after the resume")

        monkeypatch.setattr(walker, "read", no_read)
        monkeypatch.setattr(linux, "read_many", no_read)
        monkeypatch.setattr(linux, "read_memory", no_read)
        after, heads_after = walker.unwind(copied)
    assert after == in_pause and heads_after == heads_in_pause
    assert user_goids(fx.report) <= {g.goid for g in after}
    deepest = max(len(g.pcs) for g in after)
    assert deepest > 600 and any(st.walked is not None for st in copied.stacks)


@pytest.fixture
def two_pages() -> Iterator[int]:
    """Two readable pages of this process, the page after them unreadable (PROT_NONE:
    an unmapped page could be mapped again by any allocation meanwhile)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int]
    libc.mmap.argtypes += [ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    base = libc.mmap(None, 3 * PAGE, mmap.PROT_READ | mmap.PROT_WRITE, 0x22, -1, 0)
    assert base not in (None, ctypes.c_void_p(-1).value)
    assert libc.mprotect(base + 2 * PAGE, PAGE, 0) == 0
    ctypes.memmove(base, bytes(range(256)) * (2 * PAGE // 256), 2 * PAGE)
    try:
        yield int(base)
    finally:
        libc.munmap(base, 3 * PAGE)


@pytest.mark.root
def test_page_reader_answers_as_a_read_would(two_pages: int) -> None:
    data = bytes(range(256)) * (2 * PAGE // 256)
    reader = linux.PageReader(os.getpid())
    base = two_pages
    # within a page, across the two, up to the end: read ahead into the unreadable page
    # does not make them fail
    assert reader.read(base + 10, 20) == data[10:30]
    assert reader.read(base + PAGE - 8, 16) == data[PAGE - 8 : PAGE + 8]
    assert reader.read(base + 2 * PAGE - 8, 8) == data[-8:]
    # past the end, as process_vm_readv: the whole read fails
    assert reader.read(base + 2 * PAGE - 8, 16) is None
    assert reader.read(base + 2 * PAGE, 8) is None
    with pytest.raises(OSError):
        linux.read_memory(os.getpid(), base + 2 * PAGE - 8, 16)
    assert reader.read(base, 0) == b""


@pytest.mark.root
def test_read_many_marks_each_unreadable_range(two_pages: int) -> None:
    data = bytes(range(256)) * (2 * PAGE // 256)
    base = two_pages
    # more ranges than one call takes (1024), one of them unreadable in the middle
    ranges = [(base + i * 3, 33) for i in range(2000)]
    ranges.insert(1500, (base + 2 * PAGE - 4, 8))
    got = linux.read_many(os.getpid(), ranges)
    expected: list[bytes | None] = [data[i * 3 : i * 3 + 33] for i in range(2000)]
    expected.insert(1500, None)
    assert got == expected


def test_no_garbage_collection_in_any_pause() -> None:
    assert gc.isenabled()
    entered, leave = threading.Event(), threading.Event()

    def other_pause() -> None:
        with pause.realtime():
            entered.set()
            leave.wait(10)

    t = threading.Thread(target=other_pause)
    with pause.realtime():
        assert not gc.isenabled()
        t.start()
        entered.wait(10)
    assert not gc.isenabled()  # the other pause still runs
    leave.set()
    t.join()
    assert gc.isenabled()
