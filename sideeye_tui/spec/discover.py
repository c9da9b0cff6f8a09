"""Finding the specs that apply to a target without being told: a team's shared specs.

Every `*.toml` in `./.sideeye/` (specs checked into the repository one works in) and in
`~/.config/sideeye-tui/specs/` (one's own) is a candidate. A candidate applies when it
names the target's main module (`module = "..."`) or when one of its functions exists
in the target's binary. Files are read in a fixed order (the project's first, each
directory sorted by name) so merging them is reproducible.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import SideEyeError, SpecError
from .load import load_spec
from .model import Spec, merge

PROJECT_DIR = ".sideeye"
USER_DIR = (".config", "sideeye-tui", "specs")


@dataclass(frozen=True)
class Target:
    """What discovery needs to know of one target process."""

    main_module: str | None
    has_function: Callable[[str], bool]


def spec_dirs(cwd: Path | None = None, home: Path | None = None) -> list[Path]:
    """Where specs are looked for, in reading order."""
    cwd = Path.cwd() if cwd is None else cwd
    home = Path.home() if home is None else home
    return [cwd / PROJECT_DIR, home.joinpath(*USER_DIR)]


def untrusted(path: Path, euid: int | None = None) -> str | None:
    """Why root must not apply a spec it found on its own, or None when it may.

    A spec's SQL runs as the tool runs, and a spec found in the current directory can
    be anyone's: as root, only a file that root owns, in a directory root owns, and
    that nobody else can change is applied without being named with --spec."""
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        return None  # it runs with the caller's own rights
    real = Path(os.path.realpath(path))
    for what, p in (("it", real), ("its directory", real.parent)):
        st = p.stat()
        if st.st_uid != 0:
            return f"{what} is owned by uid {st.st_uid}, not root"
        if st.st_mode & 0o022:
            return f"{what} is writable by others (mode {st.st_mode & 0o777:o})"
    return None


def spec_files(dirs: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for d in dirs:
        with contextlib.suppress(OSError):
            found.extend(sorted(p for p in d.glob("*.toml") if p.is_file()))
    return found


def applies(spec: Spec, target: Target) -> bool:
    if spec.module is not None and spec.module == target.main_module:
        return True
    return any(target.has_function(f.name) for f in spec.functions)


def discover_specs(
    targets: list[Target], dirs: Iterable[Path] | None = None
) -> tuple[list[Spec], list[str]]:
    """The specs applying to at least one target, and one warning per unreadable file.

    A broken spec file must not stop a snapshot: it is reported and left out.
    """
    specs: list[Spec] = []
    warnings: list[str] = []
    for path in spec_files(spec_dirs() if dirs is None else dirs):
        try:
            why = untrusted(path)
        except OSError as e:
            why = e.strerror or str(e)
        if why is not None:
            warnings.append(
                f"{path}: not applied: {why} (as root, a spec found in ./{PROJECT_DIR} or"
                " ~/.config must be root's and writable by no one else; name it with --spec"
                " to use it)"
            )
            continue
        try:
            spec = load_spec(str(path))
        except SpecError as e:
            warnings.append(str(e))
            continue
        if any(applies(spec, t) for t in targets):
            specs.append(spec)
    return specs, warnings


@contextlib.contextmanager
def binary_targets(processes: Iterable[tuple[str, str | None]]) -> Iterator[list[Target]]:
    """Targets for (executable, main module) pairs, their binaries opened on first use.

    A binary that cannot be opened has no functions: its specs can still apply by
    module. The binaries are closed when the block ends.
    """
    from ..dwarf.binary import GoBinary

    opened: dict[str, GoBinary | None] = {}

    def lookup(exe: str) -> Callable[[str], bool]:
        def has_function(name: str) -> bool:
            if exe not in opened:
                try:
                    opened[exe] = GoBinary.open(exe)
                except (SideEyeError, OSError):
                    opened[exe] = None
            binary = opened[exe]
            return binary is not None and binary.function_entry(name) is not None

        return has_function

    try:
        yield [Target(module, lookup(exe)) for exe, module in processes]
    finally:
        for binary in opened.values():
            if binary is not None:
                binary.close()


def resolve_specs(
    explicit: str | None, processes: Iterable[tuple[str, str | None]]
) -> tuple[Spec | None, list[str]]:
    """The spec a snapshot applies, merged, and warnings about the spec files.

    explicit (--spec FILE) is used alone; a file that does not exist is refused (it
    is a typo, and nothing is paused yet), a malformed one is a warning so the
    snapshot is still taken. Without it, the specs are discovered.
    """
    if explicit is not None:
        if not os.path.isfile(explicit):
            raise SpecError(f"{explicit}: no such spec file")
        try:
            return load_spec(explicit), []
        except SpecError as e:
            return None, [str(e)]
    with binary_targets(processes) as targets:
        specs, warnings = discover_specs(targets)
    if not specs:
        return None, warnings
    merged, conflicts = merge(specs)
    return merged, warnings + conflicts
