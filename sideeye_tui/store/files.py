"""Snapshot files hold a process's memory contents: only their owner may read them."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

_umask_lock = threading.RLock()


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """Create every file inside the block (database, .wal, spill files) as 0600.

    DuckDB opens its files itself and re-creates the .wal after each checkpoint, so
    the process umask is the one knob that reaches them all. The umask is process
    wide: the lock keeps our own writers from restoring each other's value.
    """
    with _umask_lock:
        old = os.umask(0o077)
        try:
            yield
        finally:
            os.umask(old)
