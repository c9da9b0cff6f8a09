"""The read side: every question asked of a snapshot file, by any reader.

The summary (`sideeye-tui summary`), the explorer and the views to come all read
through this package; it never writes a file and never imports Textual, the capture
layers or the spec loader, so importing it costs DuckDB and the store's opener only.
Modules are imported by name (nothing is re-exported here), so a reader loads what it
uses:

    snapshot.py     one file opened for browsing: derived tables, buckets, flame, diff
    summary.py      the per-process report behind `summary`
    spec_tables.py  the tables a spec registered, and the rows linked to a row
    tables.py       any per-snapshot table, paged; the goroutine a row names
    buckets.py      what a bucket is: the "stack" and "group" levels
    format.py       durations and counts, one way for every reader
    reader.py       the one interface the explorer reads through (and its DuckDB reader)
"""
