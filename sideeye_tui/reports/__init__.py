"""What a spec makes of a snapshot file: function tables, extra columns, derived
tables and links. Never imports the UI or the capture layer: it works on a Snapshot
and a DuckDB file. Reading those tables back is the read side's job (query/).

Names are loaded on first use: the read side imports `reports.sql` alone, and must
not pull in the spec loader and the writer through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .apply import Message, apply_spec, write_reports

__all__ = ["Message", "apply_spec", "write_reports"]

_HOMES = {"Message": "apply", "apply_spec": "apply", "write_reports": "apply"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)
