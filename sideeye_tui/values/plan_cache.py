"""Compiled capture plans on disk, so that a spec is compiled once per binary.

A plan depends only on the binary (its build id), the runtime layout read from it and
the spec's captures: the key is a hash of the three and of PLAN_FORMAT (bumped when
the plan's shape or the compiler's output changes). The file holds the whole plan and
the Go types it read; the decoder reads a type that is not there (an interface's
dynamic type found at capture time) from DWARF, through a reader made on first use.
Plain JSON written atomically (dwarf/cache.py), under <cache dir>/plans/.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..dwarf.cache import Cache, default_dir
from ..dwarf.gotypes import Field, GoType, TypeTable
from ..dwarf.layout import layout_to_json
from .plan import (
    CapturePlan,
    ChaseType,
    CompiledExpression,
    FunctionPlan,
    PathOp,
    Root,
    Site,
    Slot,
    compile_plan,
)

if TYPE_CHECKING:
    from ..dwarf.binary import GoBinary

PLAN_FORMAT = 1


def plan_key(binary: GoBinary, captures: Mapping[str, Sequence[str]]) -> str:
    spec = sorted((name, list(exprs)) for name, exprs in captures.items())
    text = json.dumps(
        [PLAN_FORMAT, binary.build_id, layout_to_json(binary.layout), spec],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def compile_plan_cached(
    binary: GoBinary, captures: Mapping[str, Sequence[str]], cache_dir: str | None = None
) -> CapturePlan:
    """compile_plan, from the cache when this binary, layout and spec were compiled
    before (in any process); a fresh compile is stored for the next one."""
    cache = Cache(cache_dir or default_dir())
    path = os.path.join(cache.root, "plans", plan_key(binary, captures) + ".json")
    data = cache.load(path)
    if data is not None:
        try:
            plan = plan_from_json(data["plan"])
        except (KeyError, TypeError, ValueError):
            plan = None
        if plan is not None:
            plan.reader_factory = lambda: _reader(binary)
            return plan
    plan = compile_plan(binary, captures)
    cache.store(path, {"plan": plan_to_json(plan)})
    return plan


def _reader(binary: GoBinary) -> Any:
    from ..dwarf.typereader import TypeReader

    return TypeReader(binary.dwarf_info(), binary.runtime_types_base())


def plan_to_json(plan: CapturePlan) -> dict[str, Any]:
    table = plan.types
    return {
        "functions": [
            [
                f.name,
                f.lo,
                f.hi,
                [[e.text, e.type, e.sql_type, e.unavailable] for e in f.expressions],
            ]
            for f in plan.functions
        ],
        "sites": [
            [
                s.pc,
                s.function,
                [
                    [
                        [list(p) for p in r.pieces],
                        [[o.kind, o.arg, o.elem_size] for o in r.ops],
                        r.chase_type,
                        r.unavailable,
                        r.value_type,
                    ]
                    for r in s.roots
                ],
            ]
            for s in plan.sites.values()
        ],
        "chase_types": [
            [c.size, c.name, [[x.off, x.kind, x.target, x.aux, x.cap, x.target2] for x in c.slots]]
            for c in plan.chase_types
        ],
        "rtypes": [[a, t] for a, t in plan.rtypes.items()],
        "errors": list(plan.errors),
        "types": None
        if table is None
        else {
            "types": [_type_to_json(t) for t in table.types.values()],
            "by_runtime_type": [[a, t] for a, t in table.by_runtime_type.items()],
        },
    }


def plan_from_json(d: dict[str, Any]) -> CapturePlan:
    plan = CapturePlan()
    for name, lo, hi, exprs in d["functions"]:
        plan.functions.append(
            FunctionPlan(name, lo, hi, tuple(CompiledExpression(*e) for e in exprs))
        )
    for pc, function, roots in d["sites"]:
        plan.sites[pc] = Site(
            pc,
            function,
            tuple(
                Root(
                    pieces=tuple((off, size) for off, size in pieces),
                    ops=tuple(PathOp(*o) for o in ops),
                    chase_type=chase,
                    unavailable=unavailable,
                    value_type=value_type,
                )
                for pieces, ops, chase, unavailable, value_type in roots
            ),
        )
    plan.chase_types = [
        ChaseType(size, tuple(Slot(*x) for x in slots), name)
        for size, name, slots in d["chase_types"]
    ]
    plan.rtypes = {a: t for a, t in d["rtypes"]}
    plan.errors = list(d["errors"])
    if d["types"] is not None:
        table = TypeTable()
        for t in d["types"]["types"]:
            go = _type_from_json(t)
            table.types[go.id] = go
        table.by_runtime_type = {a: t for a, t in d["types"]["by_runtime_type"]}
        plan.types = table
    return plan


def _type_to_json(t: GoType) -> list[Any]:
    return [
        t.id,
        t.name,
        t.kind,
        t.size,
        [[f.name, f.offset, f.type, f.embedded] for f in t.fields],
        t.elem,
        t.key,
        t.count,
        t.runtime_type,
        t.map_header,
        t.map_impl,
    ]


def _type_from_json(v: list[Any]) -> GoType:
    (id_, name, kind, size, fields, elem, key, count, rtype, header, impl) = v
    return GoType(
        id=id_,
        name=name,
        kind=kind,
        size=size,
        fields=tuple(Field(*f) for f in fields),
        elem=elem,
        key=key,
        count=count,
        runtime_type=rtype,
        map_header=header,
        map_impl=impl,
    )
