"""bench.traceback_parity compares a snapshot's frames with Go's dump as Go prints it."""

from __future__ import annotations

from bench.traceback_parity import parity
from tests.capture.tracebacks import parse_dump

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

goroutine 9 [running]:
main.spin()
\t/src/s.go:3 +0x1

goroutine 11 [select]:
main.late()
\t/src/l.go:8 +0x1
"""

GOPARK = ("runtime.gopark", "/go/src/runtime/proc.go", 462, False)


def test_default_level_hides_runtime_internals_and_wrappers() -> None:
    ours = {
        1: [
            GOPARK,
            ("main.(*S).wait", "/src/main.go", 12, False),
            ("main.main", "/src/main.go", 30, False),
        ],
        7: [
            GOPARK,
            ("main.work[...]", "/src/w.go", 5, False),
            ("main.main.gowrap1", "/src/main.go", 29, True),
        ],
        9: [("main.other", "/src/o.go", 1, False)],
    }
    status = {1: "waiting", 7: "waiting", 9: "running"}
    p = parity(ours, status, parse_dump(DUMP), system=False)
    assert (p.same, p.differ, p.absent) == (2, 0, 1)  # 9 running: skipped; 11 born after


def test_a_differing_line_is_reported() -> None:
    ours = {
        1: [("main.(*S).wait", "/src/main.go", 13, False), ("main.main", "/src/main.go", 30, False)]
    }
    p = parity(ours, {1: "waiting"}, parse_dump(DUMP), system=True)
    assert (p.same, p.differ) == (0, 1)
    (why,) = p.why
    assert why.startswith("frame 0:") and "13" in why
