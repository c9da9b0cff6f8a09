"""Shared fixtures of the explorer tests: the deterministic snapshot file."""

from __future__ import annotations

from pathlib import Path

import pytest

from .fixture_db import build_fixture_db


@pytest.fixture(scope="session")
def fixture_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session; tests copy it (DuckDB files are cheap to copy)."""
    return Path(build_fixture_db(tmp_path_factory.mktemp("explorer") / "fixture.duckdb"))


@pytest.fixture
def fixture_db(fixture_db_template: Path, tmp_path: Path) -> str:
    """A private copy of the fixture file: two snapshots, a failed process, report tables."""
    target = tmp_path / "fixture.duckdb"
    target.write_bytes(fixture_db_template.read_bytes())
    return str(target)
