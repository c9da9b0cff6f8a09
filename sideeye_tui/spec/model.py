"""What a spec asks for, as plain frozen data: parsed once, merged, then applied.

A spec names functions and the expressions to capture in their frames, extra columns
(SQL over the captured columns), derived tables (SQL over every table) and links
(rows of two tables sharing values). Several spec files may apply to one snapshot;
merge() folds them into one Spec.
"""

from __future__ import annotations

from dataclasses import dataclass

# The leading columns of every function table; no expression or extra may take them.
FUNCTION_KEY_COLUMNS: tuple[str, ...] = ("snapshot_id", "pid", "goid", "depth")


@dataclass(frozen=True)
class Extra:
    """An extra column of a function table: DuckDB SQL over the row's other columns."""

    name: str
    sql: str


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # as the runtime prints it: main.(*Server).handle; also the table's name
    capture: tuple[str, ...] = ()  # expressions, each one column named by its text
    extra: tuple[Extra, ...] = ()
    sources: tuple[str, ...] = ()  # spec files that named it


@dataclass(frozen=True)
class DerivedTable:
    name: str
    sql: str  # written for one snapshot; see reports.derived
    source: str = ""


@dataclass(frozen=True)
class LinkEnd:
    table: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Link:
    name: str  # given in the spec, or made from both ends
    source: LinkEnd  # the spec's `from`
    target: LinkEnd  # the spec's `to`
    spec_path: str = ""


@dataclass(frozen=True)
class ProbeSpec:
    """A dynamic-events probe (`sideeye-tui trace`): a function or PATH:LINE."""

    location: str
    capture: tuple[str, ...] = ()  # at entry, or at the line
    on_return: tuple[str, ...] = ()  # function probes: results, named or ~r0
    when: str | None = None  # condition evaluated in the probe
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spec:
    path: str  # the file it came from; for a merged spec, the files joined by ", "
    module: str | None = None  # the main module it is meant for, if it says
    functions: tuple[FunctionSpec, ...] = ()
    tables: tuple[DerivedTable, ...] = ()  # in file order: later ones may read earlier ones
    links: tuple[Link, ...] = ()
    probes: tuple[ProbeSpec, ...] = ()

    @property
    def captures(self) -> dict[str, list[str]]:
        """What take_snapshot(captures=...) wants: function -> expressions."""
        return {f.name: list(f.capture) for f in self.functions}

    def function(self, name: str) -> FunctionSpec | None:
        return next((f for f in self.functions if f.name == name), None)

    @property
    def is_empty(self) -> bool:
        return not (self.functions or self.tables or self.links or self.probes)


def _merge_function(a: FunctionSpec, b: FunctionSpec, warnings: list[str]) -> FunctionSpec:
    capture = a.capture + tuple(e for e in b.capture if e not in a.capture)
    extra = list(a.extra)
    for x in b.extra:
        same = next((y for y in extra if y.name == x.name), None)
        if same is None:
            extra.append(x)
        elif same.sql != x.sql:
            warnings.append(
                f"{', '.join(b.sources)}: extra column {x.name!r} of {a.name} is already"
                f" defined differently in {', '.join(a.sources)}; keeping the first"
            )
    return FunctionSpec(a.name, capture, tuple(extra), a.sources + b.sources)


def merge(specs: list[Spec]) -> tuple[Spec, list[str]]:
    """One spec doing what all of them ask, and warnings about what they disagree on.

    The same function in two specs captures the union of their expressions; a derived
    table or extra column defined twice differently keeps the first definition.
    """
    warnings: list[str] = []
    functions: dict[str, FunctionSpec] = {}
    tables: dict[str, DerivedTable] = {}
    links: list[Link] = []
    probes: dict[str, ProbeSpec] = {}
    modules = []
    for spec in specs:
        if spec.module:
            modules.append(spec.module)
        for f in spec.functions:
            functions[f.name] = (
                _merge_function(functions[f.name], f, warnings) if f.name in functions else f
            )
        for t in spec.tables:
            first = tables.get(t.name)
            if first is None:
                tables[t.name] = t
            elif first.sql != t.sql:
                warnings.append(
                    f"{t.source}: derived table {t.name!r} is already defined differently"
                    f" in {first.source}; keeping the first"
                )
        for probe in spec.probes:
            first_probe = probes.setdefault(probe.location, probe)
            if first_probe is not probe and first_probe != probe:
                warnings.append(
                    f"{', '.join(probe.sources)}: probe {probe.location!r} is already defined"
                    f" in {', '.join(first_probe.sources)}; keeping the first"
                )
        for link in spec.links:
            same = next((seen for seen in links if seen.name == link.name), None)
            if same is None:
                links.append(link)
            elif (same.source, same.target) != (link.source, link.target):
                warnings.append(
                    f"{link.spec_path}: link {link.name!r} is already defined; keeping the first"
                )
    merged = Spec(
        path=", ".join(s.path for s in specs),
        module=modules[0] if len(set(modules)) == 1 else None,
        functions=tuple(functions.values()),
        tables=tuple(tables.values()),
        links=tuple(links),
        probes=tuple(probes.values()),
    )
    return merged, warnings
