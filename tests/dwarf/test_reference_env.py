"""The reference build runs `go build` as root: the caller's Go settings must not reach it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sideeye_tui.dwarf import reference as ref


@pytest.mark.go
def test_reference_build_ignores_the_callers_go_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran-as-root"
    tool = tmp_path / "tool.sh"
    tool.write_text(f'#!/bin/sh\ntouch {marker}\nexec "$@"\n')
    tool.chmod(0o755)
    goenv = tmp_path / "goenv"
    goenv.write_text(f"GOFLAGS=-toolexec={tool}\n")
    home = tmp_path / "home"
    (home / ".config" / "go").mkdir(parents=True)
    (home / ".config" / "go" / "env").write_text(f"GOFLAGS=-toolexec={tool}\n")
    monkeypatch.setenv("GOENV", str(goenv))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GOFLAGS", f"-toolexec={tool}")
    monkeypatch.setenv("CC", str(tool))
    version = subprocess.run(
        ["go", "env", "GOVERSION"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/local/go/bin:/usr/bin:/bin", "GOENV": "off", "HOME": "/root"},
    ).stdout.strip()

    exe = ref.build_reference(version, "amd64", str(tmp_path / "out"))

    assert Path(exe).exists()
    assert not marker.exists(), "the caller's -toolexec ran during the reference build"
