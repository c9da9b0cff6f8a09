"""bench.traceback_parity reads Go's own dumps as Go writes them."""

from __future__ import annotations

from bench.traceback_parity import parse_dump, shown_by_default

DUMP = """goroutine 1 [select, 2 minutes]:
main.(*S).wait(0xc000010000, {0x1, 0x2})
\t/src/main.go:12 +0x45
main.main()
\t/src/main.go:30 +0x1d

goroutine 7 [chan receive]:
main.work[...](...)
\t/src/w.go:5
created by main.main in goroutine 1
\t/src/main.go:29 +0x99
"""


def test_parse_dump_keeps_frames_and_drops_creators() -> None:
    got = parse_dump(DUMP)
    assert got[1].header == "select, 2 minutes"
    assert got[1].frames == [
        ("main.(*S).wait", "/src/main.go", 12),
        ("main.main", "/src/main.go", 30),
    ]
    assert got[7].frames == [("main.work[...]", "/src/w.go", 5)]


def test_default_traceback_hides_runtime_internals_and_wrappers() -> None:
    assert not shown_by_default("runtime.gopark", False)
    assert shown_by_default("runtime.Goexit", False)
    assert not shown_by_default("main.(*T).M", True)
    assert shown_by_default("internal/poll.runtime_pollWait", False)
