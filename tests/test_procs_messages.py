"""check_target's one-line refusals say what is true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sideeye_tui.errors import ProcessError
from sideeye_tui.procs import check_target, inspect_exe

SLEEPER = 'package main\n\nimport "time"\n\nfunc main() { time.Sleep(time.Hour) }\n'


@pytest.mark.go
def test_a_386_go_program_is_named_as_such_not_as_not_go(tmp_path: Path) -> None:
    (tmp_path / "main.go").write_text(SLEEPER)
    (tmp_path / "go.mod").write_text("module sleeper\n\ngo 1.22\n")
    env = dict(os.environ, GOARCH="386", GOTOOLCHAIN="local", GOFLAGS="-buildvcs=false")
    subprocess.run(["go", "build", "-o", "sleeper", "."], cwd=tmp_path, env=env, check=True)
    info = inspect_exe(str(tmp_path / "sleeper"))
    assert info is not None and info.error is not None
    assert info.error.endswith("a 32-bit 386 Go program: only 64-bit x86 (amd64) is supported")
    proc = subprocess.Popen([str(tmp_path / "sleeper")])
    try:
        with pytest.raises(ProcessError, match=r"a 32-bit 386 Go program: only 64-bit x86"):
            check_target(proc.pid)
    finally:
        proc.kill()
        proc.wait()


SEIZE = """
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
if libc.ptrace(0x4206, int(sys.argv[1]), 0, 0) != 0:  # PTRACE_SEIZE
    sys.exit(f"seize failed: {ctypes.get_errno()}")
print("seized", flush=True)
time.sleep(60)
"""


@pytest.mark.go
@pytest.mark.root
def test_a_process_another_tracer_holds_is_named_with_its_tracer(tmp_path: Path) -> None:
    (tmp_path / "main.go").write_text(SLEEPER)
    (tmp_path / "go.mod").write_text("module sleeper\n\ngo 1.22\n")
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-buildvcs=false")
    subprocess.run(["go", "build", "-o", "sleeper", "."], cwd=tmp_path, env=env, check=True)
    target = subprocess.Popen([str(tmp_path / "sleeper")])
    tracer = subprocess.Popen(
        [sys.executable, "-c", SEIZE, str(target.pid)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert tracer.stdout is not None and tracer.stdout.readline() == "seized\n"
        with pytest.raises(ProcessError) as err:
            check_target(target.pid)
        assert f"is already traced by pid {tracer.pid} (python" in str(err.value)
        assert "run as root" not in str(err.value)
    finally:
        tracer.kill()
        tracer.wait()
        target.kill()
        target.wait()
