"""Suite-wide configuration: skip what this machine cannot run, with the reason.

Markers (declared in pyproject.toml): `root` needs root (ptrace, process_vm_readv),
`bpf` loads an eBPF program with BCC, `go` builds a Go fixture, `slow` takes seconds.
A marked test is skipped, not failed, where its requirement is missing, so the suite
runs anywhere. `make test` (and CI) set SIDEEYE_REQUIRE_ALL=1: then a missing
requirement stops the run instead, so a broken install can never pass as green.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest


def _have_go() -> bool:
    if shutil.which("go"):
        return True
    return any(os.access(p, os.X_OK) for p in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go"))


def _have_bcc() -> bool:
    try:
        return importlib.util.find_spec("bcc") is not None
    except (ImportError, ValueError):
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = {
        "root": None if os.geteuid() == 0 else "needs root (ptrace, process_vm_readv)",
        "bpf": None if _have_bcc() else "needs BCC (Debian python3-bpfcc in the venv)",
        "go": None if _have_go() else "needs a Go toolchain",
    }
    if os.environ.get("SIDEEYE_REQUIRE_ALL") == "1":
        absent = sorted(
            {r for m, r in missing.items() if r and any(i.get_closest_marker(m) for i in items)}
        )
        if absent:
            raise pytest.UsageError("SIDEEYE_REQUIRE_ALL=1 but: " + "; ".join(absent))
    for item in items:
        for marker, reason in missing.items():
            if reason is not None and item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skip(reason=reason))
                break
