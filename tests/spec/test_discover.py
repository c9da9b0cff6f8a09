"""Finding specs without --spec: the project's ./.sideeye and the user's own directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sideeye_tui.errors import SpecError
from sideeye_tui.spec import Target, discover_specs, resolve_specs, spec_dirs
from sideeye_tui.spec.discover import untrusted

BY_MODULE = 'module = "example.com/svc"\n[functions."main.other"]\ncapture = ["a"]\n'
BY_FUNCTION = '[functions."main.handle"]\ncapture = ["req"]\n'
ELSEWHERE = '[functions."other.Func"]\ncapture = ["x"]\n'
SAME_FUNCTION = '[functions."main.handle"]\ncapture = ["req", "s.addr"]\n'


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A project directory (the cwd) and a fake HOME, each with a specs directory."""
    project, home = tmp_path / "project", tmp_path / "home"
    (project / ".sideeye").mkdir(parents=True)
    (home / ".config" / "sideeye-tui" / "specs").mkdir(parents=True)
    monkeypatch.chdir(project)
    monkeypatch.setenv("HOME", str(home))
    return project / ".sideeye", home / ".config" / "sideeye-tui" / "specs"


def target(module: str | None, functions: set[str]) -> Target:
    return Target(module, lambda name: name in functions)


def test_spec_dirs_follow_cwd_and_home(dirs: tuple[Path, Path]) -> None:
    assert [p.resolve() for p in spec_dirs()] == [p.resolve() for p in dirs]


def test_discovery_by_module_and_by_function(dirs: tuple[Path, Path]) -> None:
    project, user = dirs
    (project / "b_module.toml").write_text(BY_MODULE)
    (project / "a_function.toml").write_text(BY_FUNCTION)
    (project / "notes.txt").write_text(BY_FUNCTION)  # only *.toml
    (user / "elsewhere.toml").write_text(ELSEWHERE)
    (user / "broken.toml").write_text("[functions\n")

    specs, warnings = discover_specs([target("example.com/svc", {"main.handle"})])
    assert [Path(s.path).name for s in specs] == ["a_function.toml", "b_module.toml"]
    assert len(warnings) == 1 and warnings[0].startswith(f"{user / 'broken.toml'}:1:")

    specs, _ = discover_specs([target("example.com/other", {"other.Func"})])
    assert [Path(s.path).name for s in specs] == ["elsewhere.toml"]

    # Several targets: a spec applies when it fits any of them.
    specs, _ = discover_specs([target("example.com/svc", set()), target(None, {"other.Func"})])
    assert [Path(s.path).name for s in specs] == ["b_module.toml", "elsewhere.toml"]


def test_resolve_merges_discovered_specs(dirs: tuple[Path, Path]) -> None:
    project, user = dirs
    (project / "one.toml").write_text(
        BY_MODULE + "[functions.\"main.handle\"]\ncapture = ['req']\n"
    )
    (user / "two.toml").write_text('module = "example.com/svc"\n' + SAME_FUNCTION)
    # The executable does not exist: specs still apply by module.
    spec, warnings = resolve_specs(None, [("/nonexistent/svc", "example.com/svc")])
    assert warnings == []
    assert spec is not None
    assert spec.captures == {"main.other": ["a"], "main.handle": ["req", "s.addr"]}
    assert spec.path == f"{project / 'one.toml'}, {user / 'two.toml'}"

    spec, warnings = resolve_specs(None, [("/nonexistent/svc", "example.com/elsewhere")])
    assert spec is None and warnings == []


def test_resolve_explicit_spec(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(BY_FUNCTION)
    spec, warnings = resolve_specs(str(good), [])
    assert spec is not None and spec.captures == {"main.handle": ["req"]} and warnings == []

    bad = tmp_path / "bad.toml"
    bad.write_text("capture = [")  # an error at the end of the document
    spec, warnings = resolve_specs(str(bad), [])
    assert spec is None
    assert warnings == [f"{bad}:1:12: Invalid value"]

    with pytest.raises(SpecError, match=r"missing\.toml: no such spec file$"):
        resolve_specs(str(tmp_path / "missing.toml"), [])


def test_resolve_opens_the_binary_for_functions(dirs: tuple[Path, Path]) -> None:
    """A real binary that is not Go has no functions: nothing applies, nothing raises."""
    project, _ = dirs
    (project / "f.toml").write_text(BY_FUNCTION)
    spec, warnings = resolve_specs(None, [(os.path.realpath("/bin/sh"), None)])
    assert spec is None and warnings == []


@pytest.mark.root
def test_as_root_a_found_spec_must_be_roots_and_unwritable_by_others(
    dirs: tuple[Path, Path],
) -> None:
    """A spec left in ./.sideeye by another user is not run by root unasked."""
    project, _ = dirs
    assert os.geteuid() == 0
    for name in ("mine", "theirs", "open", "in_their_dir"):
        (project / f"{name}.toml").write_text(BY_FUNCTION)
    os.chown(project / "theirs.toml", 1000, 1000)
    os.chmod(project / "open.toml", 0o666)
    theirs_dir = project / "sub"
    theirs_dir.mkdir()
    (theirs_dir / "real.toml").write_text(BY_FUNCTION)
    os.chown(theirs_dir, 1000, 1000)
    (project / "in_their_dir.toml").unlink()
    (project / "in_their_dir.toml").symlink_to(theirs_dir / "real.toml")

    specs, warnings = discover_specs([target(None, {"main.handle"})])
    assert [Path(s.path).name for s in specs] == ["mine.toml"]
    assert sorted(w.split(": not applied: ")[1].split(" (as root")[0] for w in warnings) == [
        "it is owned by uid 1000, not root",
        "it is writable by others (mode 666)",
        "its directory is owned by uid 1000, not root",
    ]
    # Named with --spec, the caller vouches for it.
    spec, problems = resolve_specs(str(project / "theirs.toml"), [])
    assert spec is not None and not problems


def test_a_spec_is_trusted_as_is_by_a_user_other_than_root(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text(BY_FUNCTION)
    os.chmod(path, 0o666)
    assert untrusted(path, euid=1000) is None
    assert untrusted(path, euid=0) is not None
