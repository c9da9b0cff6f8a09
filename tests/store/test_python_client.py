"""What README offers users of the files works from the venv: DuckDB's Python client,
a TIMESTAMPTZ (snapshots.taken_at, which the client returns through pytz) and the
example queries of "The database"."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sideeye_tui.model import Frame, Goroutine, ProcessSnapshot, Snapshot
from sideeye_tui.store import write_snapshot

TAKEN = datetime(2026, 11, 23, 12, 17, 27, 123456, tzinfo=UTC)

# Run in a fresh interpreter of the venv, as a user would: nothing of the tests loaded.
CLIENT = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
(taken,) = con.execute("SELECT taken_at FROM snapshots WHERE snapshot_id = 1").fetchone()
print(taken.astimezone(__import__("datetime").timezone.utc).isoformat())
for (sql,) in [(q,) for q in sys.argv[2:]]:
    print(con.execute(sql).fetchall())
"""

# README, "The database": the largest groups and who waits on the demo's hot lock.
GROUPS = """SELECT count(*) AS n, any_value(wait_reason) AS reason, stack_id
FROM goroutines
WHERE snapshot_id = (SELECT max(snapshot_id) FROM snapshots)
GROUP BY stack_id ORDER BY n DESC LIMIT 5"""
WAITERS = """SELECT g.goid, g.wait_seconds, g.labels->>'user' AS user, g.labels->>'request_id' AS request
FROM goroutines g JOIN frames f USING (snapshot_id, pid, goid)
WHERE f.function = 'main.(*Server).lockAccount'
  AND snapshot_id = (SELECT max(snapshot_id) FROM snapshots)"""


def test_the_python_client_reads_a_timestamptz(tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    frame = Frame("main.(*Server).lockAccount", "/srv/main.go", 151, 0x401000)
    g = Goroutine(
        7, "waiting", "sync.Mutex.Lock", 2.5, None, None, None,
        labels=(("user", "alice"), ("request_id", "r1")), frames=(frame,),
    )  # fmt: skip
    proc = ProcessSnapshot(1, "/srv/x", None, "go1.26.8", "m", 1000, goroutines=(g,))
    write_snapshot(db, Snapshot(TAKEN, "box", (proc,)))
    r = subprocess.run(
        [sys.executable, "-c", CLIENT, db, GROUPS, WAITERS],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == TAKEN.isoformat()
    assert lines[1].startswith("[(1, 'sync.Mutex.Lock', ")
    assert lines[2] == "[(7, 2.5, 'alice', 'r1')]"
