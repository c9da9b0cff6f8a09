"""What a spec makes of a snapshot file: function tables, extra columns, derived
tables, links, and the queries the explorer runs over them. Never imports the UI or
the capture layer: it works on a Snapshot and a DuckDB file.
"""

from .apply import Message, apply_spec, write_reports
from .query import LinkedRow, SpecTable, linked_rows, list_tables

__all__ = [
    "LinkedRow",
    "Message",
    "SpecTable",
    "apply_spec",
    "linked_rows",
    "list_tables",
    "write_reports",
]
