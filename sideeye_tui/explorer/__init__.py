"""The Textual explorer: screens and widgets over a snapshot file.

It only queries the store (DuckDB); capture runs in a `sideeye-tui snapshot`
subprocess, so nothing here imports the BPF or DWARF layers.
"""
