"""Go's own tracebacks, parsed: the truth a snapshot's stacks are compared with.

Two sources, both printed by the fixture's runtime about itself:
- the crash dump SIGQUIT makes it print on stderr: every goroutine at the system level
  (GOTRACEBACK=system: a crash raises the level to 2), every frame shown, runtime
  frames and wrappers included, each with its file and line;
- runtime.Stack(all=true) in its READY report (`tracebacks`, parsed by the fixture):
  the default level that pprof's debug=2 prints, which hides unexported runtime frames
  and wrappers (runtime/traceback.go, showfuncinfo).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_HEADER = re.compile(r"^goroutine (\d+) .*?\[([^\],]*)[^\]]*\]:$")
_ELIDED = re.compile(r"^\.\.\.(\d+) frames elided\.\.\.$")

Position = tuple[str, str, int]  # function, file, line


@dataclass
class Traceback:
    goid: int
    state: str
    frames: list[Position] = field(default_factory=list)
    elided: int = 0  # frames the runtime left out ("...N frames elided...")
    elided_at: int = 0  # where, as an index into frames


def func_name(line: str) -> str:
    """'main.(*server).serve(0xc000010000)' -> 'main.(*server).serve'."""
    if not line.endswith(")"):
        return line
    depth = 0
    for i in range(len(line) - 1, -1, -1):
        if line[i] == ")":
            depth += 1
        elif line[i] == "(":
            depth -= 1
            if depth == 0:
                return line[:i]
    return line


def parse_dump(text: str) -> dict[int, Traceback]:
    """The goroutines of a crash dump (or any runtime traceback text), by goid."""
    out: dict[int, Traceback] = {}
    cur: Traceback | None = None
    creator = False
    pending: str | None = None
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            cur = out[int(m.group(1))] = Traceback(int(m.group(1)), m.group(2))
            creator, pending = False, None
            continue
        if cur is None:
            continue
        if not line:
            cur = None
        elif line.startswith("\t"):
            if pending is not None and not creator:
                pos = line[1:].split()[0]
                file, _, num = pos.rpartition(":")
                cur.frames.append((pending, file, int(num)))
            pending = None
        elif line.startswith("created by "):
            creator = True
        elif (e := _ELIDED.match(line)) is not None:
            cur.elided, cur.elided_at = int(e.group(1)), len(cur.frames)
        else:
            pending = func_name(line)
    return out


def from_report(entries: Sequence[dict[str, Any]]) -> dict[int, Traceback]:
    """The fixture's own parse of runtime.Stack(all=true) (report `tracebacks`)."""
    return {
        e["id"]: Traceback(
            e["id"],
            e["state"],
            [(f["function"], f["file"], f["line"]) for f in e["frames"]],
            e["elided"],
            e["elided_at"],
        )
        for e in entries
    }


def compare(captured: Sequence[Position], truth: Traceback) -> str | None:
    """None when the captured frames are the runtime's, frame for frame (the elided
    middle of a long stack counted, not compared); else what differs."""
    want = truth.frames
    if truth.elided:
        head, tail = want[: truth.elided_at], want[truth.elided_at :]
        if len(captured) != len(want) + truth.elided:
            return f"{len(captured)} frames, the runtime has {len(want) + truth.elided}"
        got = [*captured[: len(head)], *captured[len(captured) - len(tail) :]]
    else:
        got = list(captured)
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            return f"frame {i}: captured {g}, the runtime printed {w}"
    if len(got) != len(want):
        return f"captured {len(got)} frames {got}, the runtime printed {len(want)} {want}"
    return None


def _exported_runtime(name: str) -> bool:
    """runtime/traceback.go isExportedRuntime."""
    rest = name.removeprefix("runtime.")
    rcvr = ""
    i = rest.rfind(".")
    if i >= 0:
        rcvr, rest = rest[:i], rest[i + 1 :]
        if len(rcvr) >= 3 and rcvr.startswith("(*") and rcvr.endswith(")"):
            rcvr = rcvr[2:-1]
    return rest[:1].isupper() and (not rcvr or rcvr[:1].isupper())


def shown_by_default(function: str, first: bool) -> bool:
    """The name rule of runtime/traceback.go showfuncinfo at the default level: the
    frames that are no wrapper and still left out are the runtime's own."""
    if function in ("runtime.runFinalizers", "runtime.runCleanups"):
        return True
    if function == "runtime.gopanic" and not first:
        return True
    if "." not in function:
        return False
    return not function.startswith("runtime.") or _exported_runtime(function)
