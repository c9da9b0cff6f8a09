"""The runtime layout of a binary without DWARF, from a reference with it.

A stripped binary keeps its pclntab but loses the DWARF types and the symbol of
runtime.allgs. The types depend only on the Go version (and GOARCH): they are taken
from a layout learned earlier from any binary of that version with DWARF, or
else from a tiny program built on the spot with `GOTOOLCHAIN=<version> go build`.
The address of runtime.allgs is the binary's own: found by disassembling runtime
functions that load the slice header (its ptr and len words, adjacent).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

from capstone import CS_AC_READ, CS_ARCH_X86, CS_MODE_64, Cs, CsError, x86

from ..errors import BinaryError
from .cache import Cache
from .elfimage import ElfImage
from .layout import LayoutError, RuntimeLayout, layout_from_dwarf, layout_from_json, layout_to_json
from .pclntab import Pclntab

# Runtime functions that read allgs whole; which ones exist varies by version and
# inlining (forEachG in 1.22..1.26, allgadd everywhere).
ALLGS_READERS = ("runtime.forEachG", "runtime.forEachGRace", "runtime.allgadd")

_REFERENCE_MAIN = """\
// Built by sideeye-tui to learn the runtime's layout for this Go version.
package main

import (
	"context"
	"runtime/pprof"
)

func main() {
	pprof.Do(context.Background(), pprof.Labels("k", "v"), func(context.Context) {})
}
"""


def _rip_loads(code: bytes, addr: int) -> set[int]:
    """Targets of RIP-relative memory reads in a function's code."""
    md = Cs(CS_ARCH_X86, CS_MODE_64)
    md.detail = True
    out: set[int] = set()
    for ins in md.disasm(code, addr):
        for op in ins.operands:
            if (
                op.type == x86.X86_OP_MEM
                and op.mem.base == x86.X86_REG_RIP
                and op.access & CS_AC_READ
                and op.size == 8
            ):
                out.add(ins.address + ins.size + op.mem.disp)
    return out


def allgs_by_disassembly(image: ElfImage, tab: Pclntab) -> int | None:
    """runtime.allgs: the address A loaded together with A+8 by the allgs readers."""
    if image.arch != "amd64":
        return None
    writable = [
        s for n, s in image.sections.items() if n in (".bss", ".data", ".noptrbss", ".noptrdata")
    ]
    votes: dict[int, int] = {}
    for name in ALLGS_READERS:
        index = tab.names().get(name)
        if index is None:
            continue
        fn = tab.func_at(index)
        try:
            loads = _rip_loads(image.read(fn.entry, fn.end - fn.entry), fn.entry)
        except (BinaryError, CsError):
            continue
        for a in loads:
            if a + 8 in loads and any(s.contains(a) for s in writable):
                votes[a] = votes.get(a, 0) + 1
    if not votes:
        return None
    best = max(votes.values())
    winners = [a for a, v in votes.items() if v == best]
    return winners[0] if len(winners) == 1 else None


def _go_command() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    for candidate in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def build_reference(go_version: str, arch: str, out_dir: str) -> str:
    """Build the reference program with exactly this toolchain; its path. Raises LayoutError."""
    version = go_version.split()[0] if go_version else ""
    if not version.startswith("go1."):
        raise LayoutError(f"cannot pick a toolchain for version {go_version!r}")
    go = _go_command()
    if go is None:
        raise LayoutError("no `go` command to build a reference program")
    os.makedirs(out_dir, exist_ok=True)
    exe = os.path.join(out_dir, "reference")
    if os.path.exists(exe):
        return exe
    with open(os.path.join(out_dir, "go.mod"), "w", encoding="utf-8") as f:
        f.write("module sideeye.invalid/reference\n\ngo 1.20\n")
    with open(os.path.join(out_dir, "main.go"), "w", encoding="utf-8") as f:
        f.write(_REFERENCE_MAIN)
    env = dict(os.environ)
    env.update(
        GOTOOLCHAIN=version, GOOS="linux", GOARCH=arch, CGO_ENABLED="0", GOWORK="off", GOFLAGS=""
    )
    tmp = f"{exe}.{os.getpid()}.tmp"
    try:
        proc = subprocess.run(
            [go, "build", "-o", tmp, "."],
            cwd=out_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LayoutError(f"go build failed: {e}") from e
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["exit status " + str(proc.returncode)])[-1]
        raise LayoutError(f"go build with {version} failed: {last}")
    os.replace(tmp, exe)
    return exe


def learn(cache: Cache, layout: RuntimeLayout, arch: str) -> None:
    """Remember a DWARF-derived layout for its Go version (unless a richer one is known)."""
    path = cache.layout_path(layout.go_version, arch)
    known = cache.load(path)
    if known is not None and (known.get("layout") or {}).get("labels") and layout.labels is None:
        return
    generic = dataclasses.replace(layout, allgs_addr=0, async_preempt=(0, 0))
    cache.store(path, {"layout": layout_to_json(generic)})


def _learned(cache: Cache, go_version: str, arch: str) -> RuntimeLayout | None:
    data = cache.load(cache.layout_path(go_version, arch))
    if data is None:
        return None
    try:
        return layout_from_json(data["layout"])
    except (KeyError, TypeError, ValueError):
        return None


def reference_layout(
    cache: Cache,
    go_version: str,
    arch: str,
    needs_labels: bool,
    build: Callable[[str, str, str], str] = build_reference,
) -> RuntimeLayout:
    """The layout of runtime types for a Go version; LayoutError says why not."""
    learned = _learned(cache, go_version, arch)
    if learned is not None and (learned.labels is not None or not needs_labels):
        return learned
    try:
        exe = build(go_version, arch, cache.reference_dir(go_version, arch))
        image = ElfImage(exe)
        try:
            if not image.elf.has_dwarf_info():
                raise LayoutError("the reference program has no DWARF")
            layout = layout_from_dwarf(image.elf.get_dwarf_info(), go_version, image.read)
        finally:
            image.close()
    except (LayoutError, BinaryError) as e:
        if learned is not None:
            return learned  # without labels, but better than nothing
        raise LayoutError(str(e)) from e
    learn(cache, layout, arch)
    return layout


def stripped_layout(
    image: ElfImage, tab: Pclntab, cache: Cache, go_version: str, **kw: Any
) -> RuntimeLayout:
    allgs = image.symbol("runtime.allgs") or allgs_by_disassembly(image, tab)
    if allgs is None:
        raise BinaryError(
            f"{image.path}: cannot find runtime.allgs (no symbols, and no known runtime "
            f"function loads it)"
        )
    needs_labels = any(name.startswith("runtime/pprof.") for name in tab.names())
    try:
        layout = reference_layout(cache, go_version, image.arch, needs_labels, **kw)
    except LayoutError as e:
        raise BinaryError(
            f"{image.path} has no DWARF and no reference layout for {go_version}: {e}"
        ) from e
    return dataclasses.replace(layout, allgs_addr=allgs, go_version=go_version)
