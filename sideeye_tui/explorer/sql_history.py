"""The SQL console's history: recalled with up/down, kept across sessions.

One JSON string per line (a query may span lines), in the user's data directory
($XDG_DATA_HOME/sideeye-tui/sql_history, else ~/.local/share/...), readable by the
user alone: queries can quote data from the snapshots. A history that cannot be
written (read-only home) still works for the session.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MAX_ENTRIES = 1000


def default_history_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "sideeye-tui" / "sql_history"


class SqlHistory:
    """Past queries, oldest first, with a recall cursor over them.

    The cursor sits past the newest entry while the user types; previous() and next()
    walk it, and the text being typed when recall began comes back at the end.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.entries: list[str] = self._load() if path is not None else []
        self._index = len(self.entries)
        self._draft = ""

    def _load(self) -> list[str]:
        assert self.path is not None
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        entries: list[str] = []
        for line in lines[-MAX_ENTRIES:]:
            try:
                value = json.loads(line)
            except ValueError:
                continue  # a torn last line from a crash: skip it, keep the rest
            if isinstance(value, str) and value.strip():
                entries.append(value)
        if len(lines) > 2 * MAX_ENTRIES:
            self._rewrite(entries)  # appends only grow the file: trim it now and then
        return entries

    def _rewrite(self, entries: list[str]) -> None:
        assert self.path is not None
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
            os.replace(tmp, self.path)
        except OSError:
            pass  # an untrimmed history still loads

    def add(self, query: str) -> None:
        """Remember a query that was run (not twice in a row) and reset the recall."""
        query = query.strip()
        if query and (not self.entries or self.entries[-1] != query):
            self.entries.append(query)
            del self.entries[:-MAX_ENTRIES]
            self._append(query)
        self._index = len(self.entries)
        self._draft = ""

    def _append(self, query: str) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                f.write(json.dumps(query, ensure_ascii=False) + "\n")
        except OSError:
            pass  # history is a convenience: the session keeps it in memory

    def previous(self, current: str) -> str | None:
        """The entry before the cursor (saving current as the draft), None at the oldest."""
        if self._index == 0:
            return None
        if self._index == len(self.entries):
            self._draft = current
        self._index -= 1
        return self.entries[self._index]

    def next(self) -> str | None:
        """The entry after the cursor, the draft past the newest, None when already there."""
        if self._index >= len(self.entries):
            return None
        self._index += 1
        if self._index == len(self.entries):
            return self._draft
        return self.entries[self._index]
