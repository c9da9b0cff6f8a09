"""Fixtures for the variable-capture tests: valuesfixture binaries, built once."""

from __future__ import annotations

import functools
from pathlib import Path

from tests.capture.support import BUILDS
from tests.go.build import GO_DIR, build_go

VALUESFIXTURE = GO_DIR / "valuesfixture"


@functools.cache
def valuesfixture_binary(build: str) -> Path:
    toolchain, stripped = BUILDS[build]
    return build_go(VALUESFIXTURE, toolchain=toolchain, stripped=stripped)
