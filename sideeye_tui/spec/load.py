"""Reading a spec file: TOML in, a Spec out, or a SpecError naming the problem.

tomllib reports syntax errors with their line and column; the shape (which keys,
which types) is checked here, each error naming the key path so the user finds it
without a line number.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from ..errors import SpecError
from .model import (
    FUNCTION_KEY_COLUMNS,
    DerivedTable,
    Extra,
    FunctionSpec,
    Link,
    LinkEnd,
    ProbeSpec,
    Spec,
)

# Tables sideeye-tui writes itself: a derived table may not take their names.
RESERVED_TABLES = frozenset(
    {
        "meta",
        "snapshots",
        "processes",
        "goroutines",
        "frames",
        "spec_tables",
        "capture_errors",
        "spec_messages",
        "links",
    }
)

_TOP_KEYS = ("module", "functions", "tables", "links", "probes")
_PROBE_KEYS = ("capture", "on_return", "when")
_FUNCTION_KEYS = ("capture", "extra")
_TABLE_KEYS = ("sql",)
_LINK_KEYS = ("name", "from", "to")
_END_KEYS = ("table", "columns")

_POSITION = re.compile(r"^(.*) \(at line (\d+), column (\d+)\)$")


def _unknown_keys(where: str, table: dict[str, Any], allowed: tuple[str, ...]) -> None:
    extra = [k for k in table if k not in allowed]
    if extra:
        raise SpecError(
            f"{where}: unknown key {extra[0]!r} (expected {', '.join(map(repr, allowed))})"
        )


def _table(where: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(f"{where}: must be a table")
    return value


def _string(where: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{where}: must be a non-empty string")
    return value


def _strings(where: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SpecError(f"{where}: must be a list of non-empty strings")
    if len(set(value)) != len(value):
        dup = next(v for v in value if value.count(v) > 1)
        raise SpecError(f"{where}: {dup!r} is listed twice")
    return tuple(value)


def _function(path: str, name: str, body: object) -> FunctionSpec:
    where = f"{path}: functions.{_key(name)}"
    table = _table(where, body)
    _unknown_keys(where, table, _FUNCTION_KEYS)
    capture = _strings(f"{where}.capture", table.get("capture", []))
    extras = []
    for col, sql in _table(f"{where}.extra", table.get("extra", {})).items():
        if col in FUNCTION_KEY_COLUMNS or col in capture:
            raise SpecError(f"{where}.extra.{_key(col)}: the table already has a column {col!r}")
        extras.append(Extra(col, _string(f"{where}.extra.{_key(col)}", sql)))
    return FunctionSpec(name, capture, tuple(extras), (path,))


def _probe(path: str, location: str, body: object) -> ProbeSpec:
    where = f"{path}: probes.{_key(location)}"
    table = _table(where, body)
    _unknown_keys(where, table, _PROBE_KEYS)
    when = _string(f"{where}.when", table["when"]) if "when" in table else None
    return ProbeSpec(
        location,
        _strings(f"{where}.capture", table.get("capture", [])),
        _strings(f"{where}.on_return", table.get("on_return", [])),
        when,
        (path,),
    )


def _derived(path: str, name: str, body: object, functions: set[str]) -> DerivedTable:
    where = f"{path}: tables.{_key(name)}"
    table = _table(where, body)
    _unknown_keys(where, table, _TABLE_KEYS)
    if name in RESERVED_TABLES or name in functions:
        raise SpecError(f"{where}: {name!r} is already the name of another table")
    if "sql" not in table:
        raise SpecError(f"{where}: missing key 'sql'")
    return DerivedTable(name, _string(f"{where}.sql", table["sql"]), path)


def _end(where: str, body: object) -> LinkEnd:
    table = _table(where, body)
    _unknown_keys(where, table, _END_KEYS)
    for key in _END_KEYS:
        if key not in table:
            raise SpecError(f"{where}: missing key {key!r}")
    columns = _strings(f"{where}.columns", table["columns"])
    if not columns:
        raise SpecError(f"{where}.columns: must name at least one column")
    return LinkEnd(_string(f"{where}.table", table["table"]), columns)


def _link(path: str, index: int, body: object) -> Link:
    where = f"{path}: links[{index}]"
    table = _table(where, body)
    _unknown_keys(where, table, _LINK_KEYS)
    for key in ("from", "to"):
        if key not in table:
            raise SpecError(f"{where}: missing key {key!r}")
    source = _end(f"{where}.from", table["from"])
    target = _end(f"{where}.to", table["to"])
    if len(source.columns) != len(target.columns):
        raise SpecError(f"{where}: 'from' and 'to' must name as many columns")
    if "name" in table:
        name = _string(f"{where}.name", table["name"])
    else:
        name = (
            f"{source.table}({', '.join(source.columns)})"
            f" -> {target.table}({', '.join(target.columns)})"
        )
    return Link(name, source, target, path)


def _key(name: str) -> str:
    """A key as TOML would spell it, so messages point at what the user wrote."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else '"' + name + '"'


def parse_spec(text: str, path: str) -> Spec:
    """The Spec in text (read from path, which only labels messages)."""
    try:
        doc = tomllib.loads(text)
    except RecursionError:  # tomllib recurses once per level of nesting
        raise SpecError(f"{path}: nested too deeply to be a spec") from None
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = _POSITION.match(msg)
        if m:
            raise SpecError(f"{path}:{m[2]}:{m[3]}: {m[1]}") from None
        if msg.endswith(" (at end of document)"):
            last = text.split("\n")[-1]
            line, col = text.count("\n") + 1, len(last) + 1
            raise SpecError(
                f"{path}:{line}:{col}: {msg.removesuffix(' (at end of document)')}"
            ) from None
        raise SpecError(f"{path}: {msg}") from None
    _unknown_keys(path, doc, _TOP_KEYS)
    module = None
    if "module" in doc:
        module = _string(f"{path}: module", doc["module"])
    functions = tuple(
        _function(path, name, body)
        for name, body in _table(f"{path}: functions", doc.get("functions", {})).items()
    )
    names = {f.name for f in functions}
    tables = tuple(
        _derived(path, name, body, names)
        for name, body in _table(f"{path}: tables", doc.get("tables", {})).items()
    )
    raw_links = doc.get("links", [])
    if not isinstance(raw_links, list):
        raise SpecError(f"{path}: links: must be an array of tables ([[links]])")
    links = tuple(_link(path, i, body) for i, body in enumerate(raw_links))
    seen: set[str] = set()
    for link in links:
        if link.name in seen:
            raise SpecError(f"{path}: two links are named {link.name!r}")
        seen.add(link.name)
    probes = tuple(
        _probe(path, location, body)
        for location, body in _table(f"{path}: probes", doc.get("probes", {})).items()
    )
    return Spec(path, module, functions, tables, links, probes)


def load_spec(path: str) -> Spec:
    """The spec in the file at path; a SpecError if it cannot be read or is malformed."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise SpecError(f"{path}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return parse_spec(text, path)
