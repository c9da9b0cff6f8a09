"""Snapshot files hold a process's memory contents: only their owner may read them."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator

from ..errors import StoreError

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


def check_database_path(path: str, for_writing: bool) -> None:
    """Refuse a path that root must not open: raises StoreError with the reason.

    Reading: only a regular file (a FIFO would block forever). Writing, as root into
    directories other users may write: never through a symbolic link, the file's or
    the `.wal`'s DuckDB puts beside it (check_private covers whose file it is)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        if not for_writing:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise StoreError(f"{path}: no such file") from None
        else:
            raise StoreError(
                f"{path}: is a symbolic link; give the path of the file itself"
                f" ({os.path.realpath(path)})"
            )
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{path}: not a regular file")
    if not for_writing:
        return
    euid = os.geteuid()
    wal = path + ".wal"
    try:
        wst = os.lstat(wal)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(wst.st_mode) or wst.st_uid != euid:
        raise StoreError(f"{wal}: not a regular file of uid {euid}; remove it first")


def check_private(path: str) -> None:
    """Refuse to add to a file that another user owns or can read: a snapshot holds the
    memory of the processes it read."""
    st = os.stat(path)
    euid = os.geteuid()
    if st.st_uid != euid:
        raise StoreError(f"{path}: owned by uid {st.st_uid}, not by uid {euid} writing it")
    if st.st_mode & 0o077:
        raise StoreError(
            f"{path}: readable or writable by others (mode {st.st_mode & 0o777:o});"
            " chmod 600 it first, or write a new file"
        )


def create_private(path: str, make: Callable[[str], None]) -> None:
    """Create the database at path, never following a link planted there: `make` builds
    it in a private directory beside it, and a hard link puts it in place, which fails
    when anything already exists at path."""
    scratch = tempfile.mkdtemp(prefix=".sideeye-tui-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        fresh = os.path.join(scratch, "new.duckdb")
        make(fresh)
        try:
            os.link(fresh, path, follow_symlinks=False)
        except FileExistsError:
            raise StoreError(f"{path}: appeared while it was being created") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
