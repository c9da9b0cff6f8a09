"""Where root writes a snapshot: never through a link, never into someone else's file.

Each case here let root create or fill a file of another user's choosing before."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sideeye_tui import cli
from sideeye_tui.errors import SideEyeError, StoreError
from sideeye_tui.model import Snapshot
from sideeye_tui.store import open_store, write_snapshot

from .synth import synthetic


def _snap() -> Snapshot:
    return synthetic(3, 2)


def test_a_new_file_is_created_private_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    db = tmp_path / "new.duckdb"
    write_snapshot(str(db), _snap())
    st = os.lstat(db)
    assert stat.S_ISREG(st.st_mode) and st.st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("new.duckdb")) == []


@pytest.mark.parametrize("dangling", [True, False])
def test_a_symlink_is_never_followed_for_writing(tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "elsewhere.duckdb"
    if not dangling:
        write_snapshot(str(target), _snap())
    before = target.read_bytes() if not dangling else None
    link = tmp_path / "out.duckdb"
    link.symlink_to(target)
    with pytest.raises(StoreError, match="is a symbolic link"):
        write_snapshot(str(link), _snap())
    with pytest.raises(SideEyeError, match="is a symbolic link"):
        cli._check_output(str(link))  # refused before anything is paused
    if dangling:
        assert not target.exists()
    else:
        assert target.read_bytes() == before


@pytest.mark.root
def test_someone_elses_file_or_a_readable_one_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs.duckdb"
    write_snapshot(str(theirs), _snap())
    os.chown(theirs, 1000, 1000)
    with pytest.raises(StoreError, match="owned by uid 1000"):
        write_snapshot(str(theirs), _snap())
    readable = tmp_path / "readable.duckdb"
    write_snapshot(str(readable), _snap())
    os.chmod(readable, 0o644)
    with pytest.raises(StoreError, match=r"readable or writable by others \(mode 644\)"):
        write_snapshot(str(readable), _snap())
    with pytest.raises(SideEyeError, match=r"by others \(mode 644\)"):
        cli._check_output(str(readable))  # refused before anything is paused
    os.chmod(readable, 0o600)
    write_snapshot(str(readable), _snap())  # fixed by its owner: fine again


def test_a_planted_wal_link_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    write_snapshot(str(db), _snap())
    victim = tmp_path / "victim"
    (tmp_path / "s.duckdb.wal").symlink_to(victim)
    with pytest.raises(StoreError, match=r"s.duckdb.wal: not a regular file"):
        write_snapshot(str(db), _snap())
    assert not victim.exists()


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.duckdb"
    os.mkfifo(fifo)
    with pytest.raises(SideEyeError, match="not a regular file"):
        cli._check_output(str(fifo))
    # summary would block forever opening it; run it with a time limit to prove it does not
    code = f"from sideeye_tui.store import open_store; open_store({str(fifo)!r})"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert "not a regular file" in r.stderr
    with pytest.raises(StoreError, match="not a regular file"):
        open_store(str(fifo))
