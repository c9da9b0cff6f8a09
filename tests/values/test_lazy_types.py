"""The types an interface in a spec'd function may hold are found by name, without
parsing every type of the binary, and they are those the full index finds.

The truth is the full index (TypeReader.named_types: every top-level DIE of the
runtime units parsed), filtered by the old criterion: a type of the spec'd
functions' packages, of the standard packages in plan._ALWAYS, or without a package.
By name, the only ones not found are channel, function and anonymous interface
types, which a plan copies as raw bytes either way (plan._dynamic_target).
"""

from __future__ import annotations

import pytest

from sideeye_tui.dwarf.binary import GoBinary
from sideeye_tui.dwarf.variables import function_variables
from sideeye_tui.values import plan as vp

from .conftest import valuesfixture_binary

pytestmark = [pytest.mark.go]


def _raw_anyway(name: str) -> bool:
    base = name.lstrip("*")
    return base.startswith(("chan ", "<-chan ", "chan<- ", "func(", "interface {"))


@pytest.mark.parametrize("build", ["local", "go1.24.13", "go1.22.12"])
def test_candidates_by_name_are_the_full_index_s(build: str) -> None:
    with GoBinary.open(str(valuesfixture_binary(build))) as binary:
        fv = function_variables(binary, "main.holdScalars")
        assert fv is not None
        reader = fv.reader
        prefixes = ("main.", *vp._ALWAYS)
        lazy = reader.named_types_like(
            prefixes, vp._PREDECLARED, vp.DYNAMIC_TYPES_MAX, binary.read_static
        )
        full = reader.named_types()
    wanted = {
        (name, offset)
        for name, offset in full
        if "." not in name.lstrip("*[]") or name.lstrip("*[]").startswith(prefixes)
    }
    found = set(lazy)
    assert len(found) == len(lazy), "a type found twice"
    assert found <= set(full), f"not types of the full index: {sorted(found - set(full))[:10]}"
    missing = sorted(name for name, _ in wanted - found if not _raw_anyway(name))
    assert missing == [], missing
    assert any(name.startswith("main.") for name, _ in found)
    assert {"int", "string", "error"} <= {name for name, _ in found}
