"""The expression language of a spec's `capture` lists.

    expr   := '*'* name access*
    access := '.' name | '[' integer ']'

`a.b.c` follows pointers by itself, as Go does; `*p` dereferences explicitly;
`s[3]` indexes a slice (bounds-checked against its length at capture time) or an
array (checked at compile time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import SideEyeError


class ExpressionError(SideEyeError):
    """An expression that does not parse or does not fit the variable's type."""


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Index:
    index: int


@dataclass(frozen=True)
class Expression:
    text: str
    root: str  # the variable's name
    derefs: int  # leading '*'s, applied after the accesses (Go's precedence)
    accesses: tuple[Field | Index, ...]


_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*|~r\d+)|(?P<num>\d+)|(?P<op>[.\[\]*]))")


def parse(text: str) -> Expression:
    tokens: list[tuple[str, str]] = []
    pos = 0
    stripped = text.strip()
    while pos < len(stripped):
        m = _TOKEN.match(stripped, pos)
        if m is None or m.end() == pos:
            raise ExpressionError(f"capture {text!r}: unexpected {stripped[pos : pos + 10]!r}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    i = 0
    derefs = 0
    while i < len(tokens) and tokens[i] == ("op", "*"):
        derefs += 1
        i += 1
    if i >= len(tokens) or tokens[i][0] != "name":
        raise ExpressionError(f"capture {text!r}: expected a variable name")
    root = tokens[i][1]
    i += 1
    accesses: list[Field | Index] = []
    while i < len(tokens):
        kind, value = tokens[i]
        if (kind, value) == ("op", "."):
            if i + 1 >= len(tokens) or tokens[i + 1][0] != "name":
                raise ExpressionError(f"capture {text!r}: expected a field name after '.'")
            accesses.append(Field(tokens[i + 1][1]))
            i += 2
        elif (kind, value) == ("op", "["):
            if i + 2 >= len(tokens) or tokens[i + 1][0] != "num" or tokens[i + 2] != ("op", "]"):
                raise ExpressionError(
                    f"capture {text!r}: an index must be a non-negative integer: s[3]"
                )
            accesses.append(Index(int(tokens[i + 1][1])))
            i += 3
        else:
            raise ExpressionError(f"capture {text!r}: unexpected {value!r}")
    return Expression(text=text, root=root, derefs=derefs, accesses=tuple(accesses))
