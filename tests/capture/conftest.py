"""Fixtures for the snapshot-engine tests: snapfixture binaries, built once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .support import snapfixture_binary


@pytest.fixture(scope="session")
def snapfixture() -> Callable[[str], Path]:
    """build name ("local", "go1.24.13", "go1.22.12", "local-stripped") -> binary."""
    return snapfixture_binary
