"""The on-disk cache: per-binary results keyed by build id, learned layouts by version.

Plain JSON files written atomically (temp file + rename), so concurrent sideeye
processes never see half a file; a corrupt or foreign file is ignored, never fatal.

    <dir>/binaries/<sha256(build id)[:32]>.json   layout + memoized symbolization
    <dir>/layouts/<go version>-<arch>.json         layout learned from any binary with DWARF
    <dir>/reference/<go version>-<arch>/           a tiny program built to learn a layout
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from typing import Any

FORMAT = 1


def default_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "sideeye-tui")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)


class Cache:
    def __init__(self, root: str) -> None:
        self.root = root

    def binary_path(self, build_id: str) -> str:
        key = hashlib.sha256(build_id.encode()).hexdigest()[:32]
        return os.path.join(self.root, "binaries", key + ".json")

    def layout_path(self, go_version: str, arch: str) -> str:
        return os.path.join(self.root, "layouts", _safe(f"{go_version}-{arch}") + ".json")

    def reference_dir(self, go_version: str, arch: str) -> str:
        return os.path.join(self.root, "reference", _safe(f"{go_version}-{arch}"))

    def load(self, path: str) -> dict[str, Any] | None:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None
        return data

    def store(self, path: str, data: dict[str, Any]) -> None:
        """Best effort: a read-only or full disk only costs the next run some time."""
        data = {**data, "format": FORMAT}
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f, separators=(",", ":"))
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass
