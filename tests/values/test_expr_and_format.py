"""The expression language, Go's renderings of time values, and plan errors."""

from __future__ import annotations

import pytest

from sideeye_tui.values.decode import format_duration, format_time
from sideeye_tui.values.expr import ExpressionError, Field, Index, parse


def test_parse_fields_indexes_and_derefs() -> None:
    e = parse("req.User.Name")
    assert (e.root, e.derefs, e.accesses) == ("req", 0, (Field("User"), Field("Name")))
    e = parse("*p")
    assert (e.root, e.derefs, e.accesses) == ("p", 1, ())
    e = parse(" s[3].x ")
    assert e.accesses == (Index(3), Field("x"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a variable name"),
        ("a.", "expected a field name"),
        ("a[x]", "non-negative integer"),
        ("a+b", "unexpected"),
        ("3", "expected a variable name"),
    ],
)
def test_parse_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse(text)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1500, "1.5µs"),
        (1_500_000, "1.5ms"),
        (1_500_000_000, "1.5s"),
        (90 * 1_000_000_000, "1m30s"),
        (3_723_500_000_000, "1h2m3.5s"),
        (-2_000_000_000, "-2s"),
    ],
)
def test_durations_render_like_go(ns: int, text: str) -> None:
    assert format_duration(ns) == text


def test_times_render_as_rfc3339_utc() -> None:
    # time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC) without a monotonic reading:
    # wall holds only nanoseconds, ext the seconds since year 1.
    seconds = 1767323045 + 62135596800
    assert format_time(123456789, seconds) == "2026-01-02T03:04:05.123456789Z"
    assert format_time(0, seconds) == "2026-01-02T03:04:05Z"


@pytest.mark.go
def test_spec_mistakes_get_one_line_explanations() -> None:
    from sideeye_tui.dwarf.binary import GoBinary
    from sideeye_tui.values.plan import compile_plan

    from .conftest import valuesfixture_binary

    with GoBinary.open(str(valuesfixture_binary("local"))) as binary:
        plan = compile_plan(
            binary,
            {
                "main.holdStrng": ["x"],
                "main.holdPointers": ["req.Usr", "req[1]", "*req.ID", "nope", "req.User.Name"],
            },
        )
    errors = "\n".join(plan.errors)
    assert "unknown function 'main.holdStrng' (did you mean main.holdStrings" in errors
    assert "main.Request has no field 'Usr' (fields: ID, User" in errors
    assert "req is a *main.Request, which cannot be indexed" in errors
    assert "req.ID is a string, not a pointer" in errors
    assert "has no variable 'nope' (it has: req, " in errors
    assert all("\n" not in e for e in plan.errors)
    assert len(plan.errors) == 5  # the good expression compiles
    assert plan.sites, "the good expression has call sites to be read at"
