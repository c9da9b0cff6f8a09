"""Synthetic snapshots for the store tests and the write benchmark (bench.store_write)."""

from __future__ import annotations

from datetime import UTC, datetime

from sideeye_tui.model import Frame, Goroutine, ProcessSnapshot, Snapshot

STATUSES = ("waiting", "runnable", "running", "syscall")


def synthetic(
    goroutines: int, depth: int = 10, distinct_stacks: int | None = None, pid: int = 4242
) -> Snapshot:
    """goroutines x depth frames; distinct_stacks=None makes every stack unique."""
    stacks: dict[int, tuple[Frame, ...]] = {}
    gs = []
    for i in range(goroutines):
        key = i if distinct_stacks is None else i % distinct_stacks
        frames = stacks.get(key)
        if frames is None:
            frames = tuple(
                Frame(
                    function=f"example.com/svc/pkg{d}.(*T).method{(key + d) % 997}",
                    file=f"/src/example.com/svc/pkg{d}/file{(key * 7 + d) % 311}.go",
                    line=(key * 13 + d) % 2000 + 1,
                    pc=0x400000 + key * 64 + d,
                    inlined=d % 4 == 1,
                )
                for d in range(depth)
            )
            if distinct_stacks is not None:
                stacks[key] = frames
        gs.append(
            Goroutine(
                goid=i + 1,
                status=STATUSES[i % 4],
                wait_reason="chan receive" if i % 4 == 0 else None,
                wait_seconds=float(i % 60) if i % 4 == 0 else None,
                created_by="main.main" if i else None,
                created_by_goid=1 if i else None,
                start_function=f"example.com/svc.worker{i % 17}",
                labels=(("req", str(i % 100)),) if i % 10 == 0 else (),
                frames=frames,
                truncated=False,
                unwound_from="sched",
            )
        )
    proc = ProcessSnapshot(
        pid=pid,
        exe="/usr/bin/svc",
        build_id="abc",
        go_version="go1.22.12",
        main_module="example.com/svc",
        pause_ns=420_000,
        threads=8,
        backend="ebpf",
        goroutines=tuple(gs),
    )
    return Snapshot(taken_at=datetime.now(UTC), hostname="host", processes=(proc,))
