"""`when` conditions: comparisons of a captured scalar or string with a literal, joined
by `&&` and `||` (`&&` binds tighter), evaluated in the probe so that a call that does
not match costs only the probe. Anything else is refused at start, in one line."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..bpf import event_probe as ep
from ..errors import SideEyeError
from ..values.at_pc import EventValuesCompiler, PcRoot
from ..values.expr import ExpressionError, parse


class ConditionError(SideEyeError):
    """A `when` this version cannot evaluate in a probe."""


@dataclass(frozen=True)
class Term:
    expression: str
    op: str  # == != < <= > >=
    literal: int | str | bool
    group: int  # terms of a group are joined by &&, groups by ||


_COMPARISON = re.compile(
    r'^\s*(?P<lhs>[^=!<>"]+?)\s*(?P<op>==|!=|<=|>=|<|>)\s*'
    r'(?P<rhs>"(?:[^"\\]|\\.)*"|-?\d+|true|false)\s*$'
)
HELP = "compare a captured integer, bool or string with a literal, joined by && and ||"


def _split(text: str, sep: str) -> list[str]:
    """Split on `sep` outside string literals."""
    parts, cur, i, quoted = [], "", 0, False
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quoted:
            cur += text[i : i + 2]
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        if not quoted and text.startswith(sep, i):
            parts.append(cur)
            cur = ""
            i += len(sep)
            continue
        cur += ch
        i += 1
    parts.append(cur)
    return parts


def parse_when(location: str, text: str) -> list[Term]:
    terms: list[Term] = []
    for group, alternative in enumerate(_split(text, "||")):
        for part in _split(alternative, "&&"):
            m = _COMPARISON.match(part)
            if m is None:
                raise ConditionError(
                    f"probes.{location}: unsupported condition {text!r} at {part.strip()!r}"
                    f" ({HELP})"
                )
            lhs = m["lhs"].strip()
            try:
                parse(lhs)
            except ExpressionError:
                raise ConditionError(
                    f"probes.{location}: unsupported condition {text!r}: {lhs!r} is not an"
                    f" expression ({HELP})"
                ) from None
            rhs = m["rhs"]
            literal: int | str | bool
            if rhs.startswith('"'):
                literal = bytes(rhs[1:-1], "utf-8").decode("unicode_escape")
            elif rhs in ("true", "false"):
                literal = rhs == "true"
            else:
                literal = int(rhs)
            terms.append(Term(lhs, m["op"], literal, group))
    if len(terms) > ep.MAX_TERMS:
        raise ConditionError(f"probes.{location}: more than {ep.MAX_TERMS} comparisons in `when`")
    return terms


def compile_terms(
    location: str,
    terms: list[Term],
    compiler: EventValuesCompiler,
    pc: int,
    inlined: bool,
) -> list[ep.VCond]:
    """The terms at one probed pc, for the vconds map; ConditionError if a term's type
    does not fit (checked where the value is available)."""
    out = []
    for term in terms:
        (root,) = compiler.compile(pc, (term.expression,), False, inlined)
        c = ep.VCond(op=ep.COND_OPS[term.op], group=term.group)
        _root_into(c.x, root)
        if root.value_type and compiler._table is not None:
            t = compiler._table.go(root.value_type)
            kind = t.kind
            lit = term.literal
            if kind == "string" and isinstance(lit, str):
                if term.op not in ("==", "!="):
                    raise ConditionError(
                        f"probes.{location}: `{term.expression} {term.op}` compares a string;"
                        " only == and != do"
                    )
                raw = lit.encode()
                if len(raw) >= ep.COND_STR:
                    raise ConditionError(
                        f"probes.{location}: string literal longer than {ep.COND_STR - 1} bytes"
                    )
                c.kind = ep.COND_STRING
                c.len = len(raw)
                for i, b in enumerate(raw):
                    c.sval[i] = b
            elif kind == "bool" and isinstance(lit, bool) and term.op in ("==", "!="):
                c.kind = ep.COND_UINT
                c.ival = int(lit)
            elif kind in ("int", "uint") and isinstance(lit, int) and not isinstance(lit, bool):
                c.kind = ep.COND_INT if kind == "int" else ep.COND_UINT
                c.ival = lit if lit < (1 << 63) else lit - (1 << 64)
            else:
                raise ConditionError(
                    f"probes.{location}: cannot compare {term.expression} ({t.name}) with"
                    f" {term.literal!r} ({HELP})"
                )
        else:
            c.kind = ep.COND_INT  # unavailable here: the term is false
        out.append(c)
    return out


def _root_into(x: ep.VExpr, root: PcRoot) -> None:
    from ..values.at_pc import PIECE_REG

    x.npieces = len(root.pieces)
    x.nops = len(root.ops)
    x.size = root.size
    x.ctype = 0
    x.unavailable = int(root.unavailable is not None)
    for i, (kind, reg, off) in enumerate(root.pieces):
        x.pieces[i] = ep.VPiece(kind, reg if kind == PIECE_REG else 0, off)
    for i, op in enumerate(root.ops):
        x.ops[i] = ep.VOp(op.kind, op.arg, op.elem_size, 0)
