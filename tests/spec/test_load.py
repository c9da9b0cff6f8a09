"""Reading spec files: the example of the README, syntax errors with their position,
and every shape error named by its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from sideeye_tui.errors import SpecError
from sideeye_tui.spec import Extra, LinkEnd, load_spec, merge, parse_spec

EXAMPLE = '''
module = "example.com/x"

[functions."main.(*Server).handle"]
capture = ["req", "req.User.Name", "s.addr"]
extra = { user = "\\"req.User.Name\\"", started = "req->>'$.Start'" }

[tables.inflight]
sql = """SELECT goid, user FROM "main.(*Server).handle" ORDER BY started"""

[tables.oldest]
sql = "SELECT * FROM inflight LIMIT 1"

[[links]]
from = { table = "lock_waiters", columns = ["txn_id"] }
to   = { table = "txn_holders",  columns = ["txn_id"] }

[[links]]
name = "same user"
from = { table = "a", columns = ["u", "v"] }
to   = { table = "b", columns = ["x", "y"] }
'''


def test_example() -> None:
    spec = parse_spec(EXAMPLE, "s.toml")
    assert spec.module == "example.com/x"
    (f,) = spec.functions
    assert f.name == "main.(*Server).handle"
    assert f.capture == ("req", "req.User.Name", "s.addr")
    assert f.extra == (Extra("user", '"req.User.Name"'), Extra("started", "req->>'$.Start'"))
    assert [t.name for t in spec.tables] == ["inflight", "oldest"]  # file order
    assert spec.captures == {"main.(*Server).handle": ["req", "req.User.Name", "s.addr"]}
    first, second = spec.links
    assert first.name == "lock_waiters(txn_id) -> txn_holders(txn_id)"
    assert first.source == LinkEnd("lock_waiters", ("txn_id",))
    assert second.name == "same user"
    assert second.target == LinkEnd("b", ("x", "y"))


def test_syntax_error_has_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[functions."f"]\ncapture = ["a",\n  oops]\n')
    with pytest.raises(SpecError) as err:
        load_spec(str(path))
    msg = str(err.value)
    assert msg.startswith(f"{path}:3:3: ")
    assert "\n" not in msg


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nope\.toml: No such file or directory$"):
        load_spec(str(tmp_path / "nope.toml"))
    path = tmp_path / "latin.toml"
    path.write_bytes(b'module = "\xe9"\n')
    with pytest.raises(SpecError, match=r"latin\.toml: not UTF-8 text \(byte 10\)$"):
        load_spec(str(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "colour = 1",
            "s.toml: unknown key 'colour' (expected 'module', 'functions', 'tables', 'links', 'probes')",
        ),
        ("module = 3", "s.toml: module: must be a non-empty string"),
        (
            '[functions."f"]\ncapture = "req"',
            "s.toml: functions.f.capture: must be a list of non-empty strings",
        ),
        (
            '[functions."f"]\ncapture = ["a", 1]',
            "s.toml: functions.f.capture: must be a list of non-empty strings",
        ),
        (
            '[functions."f"]\ncapture = ["a", "a"]',
            "s.toml: functions.f.capture: 'a' is listed twice",
        ),
        (
            '[functions."m.(*T).f"]\ncaptures = []',
            "s.toml: functions.\"m.(*T).f\": unknown key 'captures' (expected 'capture', 'extra')",
        ),
        (
            "[functions.f]\nextra = { u = 3 }",
            "s.toml: functions.f.extra.u: must be a non-empty string",
        ),
        (
            '[functions.f]\ncapture = ["a"]\nextra = { a = "1" }',
            "s.toml: functions.f.extra.a: the table already has a column 'a'",
        ),
        (
            '[functions.f]\nextra = { goid = "1" }',
            "s.toml: functions.f.extra.goid: the table already has a column 'goid'",
        ),
        ("[tables.t]\nquery = 'x'", "s.toml: tables.t: unknown key 'query' (expected 'sql')"),
        ("[tables.t]", "s.toml: tables.t: missing key 'sql'"),
        (
            "[tables.frames]\nsql = 'SELECT 1'",
            "s.toml: tables.frames: 'frames' is already the name of another table",
        ),
        (
            "[functions.f]\n[tables.f]\nsql = 'SELECT 1'",
            "s.toml: tables.f: 'f' is already the name of another table",
        ),
        ("links = 1", "s.toml: links: must be an array of tables ([[links]])"),
        (
            "[[links]]\nfrom = { table = 'a', columns = ['x'] }",
            "s.toml: links[0]: missing key 'to'",
        ),
        (
            "[[links]]\nfrom = { table = 'a', columns = ['x'] }\nto = { table = 'b', columns = ['x', 'y'] }",
            "s.toml: links[0]: 'from' and 'to' must name as many columns",
        ),
        (
            "[[links]]\nfrom = { table = 'a', columns = [] }\nto = { table = 'b', columns = [] }",
            "s.toml: links[0].from.columns: must name at least one column",
        ),
        (
            "[[links]]\nfrom = { table = 'a', cols = ['x'] }\nto = { table = 'b', columns = ['x'] }",
            "s.toml: links[0].from: unknown key 'cols' (expected 'table', 'columns')",
        ),
    ],
)
def test_shape_errors(text: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(text, "s.toml")
    assert str(err.value) == message


def test_merge_unions_captures_and_keeps_first_definitions() -> None:
    a = parse_spec(
        '[functions.f]\ncapture = ["x", "y"]\nextra = { e = "x + 1" }\n'
        "[tables.t]\nsql = 'SELECT 1'\n",
        "a.toml",
    )
    b = parse_spec(
        '[functions.f]\ncapture = ["y", "z"]\nextra = { e = "x + 2", g = "y" }\n'
        '[functions.h]\ncapture = ["w"]\n'
        "[tables.t]\nsql = 'SELECT 2'\n[tables.u]\nsql = 'SELECT 3'\n",
        "b.toml",
    )
    merged, warnings = merge([a, b])
    f = merged.function("f")
    assert f is not None
    assert f.capture == ("x", "y", "z")
    assert f.extra == (Extra("e", "x + 1"), Extra("g", "y"))
    assert f.sources == ("a.toml", "b.toml")
    assert merged.captures == {"f": ["x", "y", "z"], "h": ["w"]}
    assert [(t.name, t.sql) for t in merged.tables] == [("t", "SELECT 1"), ("u", "SELECT 3")]
    assert warnings == [
        "b.toml: extra column 'e' of f is already defined differently in a.toml; keeping the first",
        "b.toml: derived table 't' is already defined differently in a.toml; keeping the first",
    ]
    assert merged.path == "a.toml, b.toml"


def test_a_deeply_nested_document_is_a_one_line_error() -> None:
    deep = "x = " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(SpecError, match=r"^deep.toml: nested too deeply to be a spec$"):
        parse_spec(deep, "deep.toml")


def test_probes() -> None:
    """[probes."LOC"] tables: capture, on_return and when, each checked for its shape."""
    spec = parse_spec(
        '[probes."main.(*Server).handle"]\n'
        'capture = ["req.ID"]\non_return = ["err", "~r0"]\nwhen = "req.ID == 7"\n'
        '[probes."demo/service/main.go:151"]\n',
        "s.toml",
    )
    assert [(p.location, p.capture, p.on_return, p.when) for p in spec.probes] == [
        ("main.(*Server).handle", ("req.ID",), ("err", "~r0"), "req.ID == 7"),
        ("demo/service/main.go:151", (), (), None),
    ]
    with pytest.raises(SpecError, match="unknown key 'captures'"):
        parse_spec('[probes."main.f"]\ncaptures = ["x"]\n', "s.toml")
    with pytest.raises(SpecError, match="when: must be a non-empty string"):
        parse_spec('[probes."main.f"]\nwhen = 3\n', "s.toml")
