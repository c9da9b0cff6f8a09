"""Build and start the Go programs the tests debug.

`build_go` compiles a Go program directory (its own go.mod, no dependencies) with the
machine's `go` or with a toolchain that `GOTOOLCHAIN` fetches through the module proxy,
and caches the binary in `tests/go/.cache/` keyed by a hash of the sources, the toolchain
and the flags. A lock file per build makes parallel pytest workers wait for each other
instead of racing. Builds keep real file paths (no `-trimpath`): the debugger shows the
source.

`start_fixture` starts a built program and waits for its ready report: every program
here prints exactly one line `READY {json}` on stdout when it is in place (and writes
the same JSON to the file given by `-report FILE`, when given), then prints nothing more
on stdout and runs until killed or until its `-lifetime` (default 10m) has passed.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

GO_DIR = Path(__file__).resolve().parent
CACHE_DIR = GO_DIR / ".cache"

SNAPFIXTURE = GO_DIR / "snapfixture"
VALUESFIXTURE = GO_DIR / "valuesfixture"
MOVEFIXTURE = GO_DIR / "movefixture"
PARKFIXTURE = GO_DIR / "parkfixture"
EVENTFIXTURE = GO_DIR / "eventfixture"
PROJECT_ROOT = GO_DIR.parent.parent
DEMO_SERVICE = PROJECT_ROOT / "demo" / "service"
BENCH_TARGET = PROJECT_ROOT / "bench" / "target"
BENCH_EVENTLOOP = PROJECT_ROOT / "bench" / "eventloop"

# None is the machine's own `go` (GOTOOLCHAIN=local); the others are fetched by the go
# command through the module proxy on first use (golang.org/toolchain), then cached in
# GOMODCACHE. go1.24.12 is absent from the proxy: 1.24.13 is the newest 1.24.
TOOLCHAINS: tuple[str | None, ...] = (None, "go1.24.13", "go1.22.12")

READY_PREFIX = "READY "
BUILD_TIMEOUT_S = 900.0
READY_TIMEOUT_S = 60.0


class GoBuildError(RuntimeError):
    """The go command is missing or the build failed."""


class FixtureError(RuntimeError):
    """A fixture did not report ready (exited, timed out, or printed a bad report)."""


def go_binary() -> str | None:
    """Path of the machine's `go`, or None."""
    found = shutil.which("go")
    if found:
        return found
    for candidate in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def go_env(toolchain: str | None) -> dict[str, str]:
    """The environment the go command runs with for `toolchain`."""
    env = dict(os.environ)
    home = Path(env.get("HOME") or "/root")
    env.setdefault("GOCACHE", str(home / ".cache" / "go-build"))
    env.setdefault("GOPATH", str(home / "go"))
    env["GOFLAGS"] = "-mod=mod"
    env["CGO_ENABLED"] = "0"
    env["GOTOOLCHAIN"] = toolchain or "local"
    env.pop("GOOS", None)
    env.pop("GOARCH", None)
    return env


def _require_go() -> str:
    go = go_binary()
    if go is None:
        raise GoBuildError("no `go` command found (PATH, /usr/local/go/bin)")
    return go


@functools.cache
def go_version(toolchain: str | None = None) -> str:
    """`go env GOVERSION` for the toolchain, e.g. "go1.22.12" (may fetch the toolchain)."""
    go = _require_go()
    proc = subprocess.run(
        [go, "env", "GOVERSION"],
        env=go_env(toolchain),
        cwd=GO_DIR,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    if proc.returncode != 0:
        raise GoBuildError(f"go env GOVERSION with toolchain {toolchain}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def _source_hash(source_dir: Path, parts: list[str]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    for path in sorted(source_dir.rglob("*")):
        rel = path.relative_to(source_dir).as_posix()
        if not path.is_file() or not (rel.endswith(".go") or rel in ("go.mod", "go.sum")):
            continue
        h.update(rel.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def build_go(
    source_dir: Path,
    toolchain: str | None = None,
    stripped: bool = False,
    extra_ldflags: str = "",
) -> Path:
    """Build the Go program in `source_dir` and return the path of its binary.

    `toolchain` None uses the machine's `go` as it is (GOTOOLCHAIN=local); a version such
    as "go1.22.12" is fetched by the go command. `stripped` links with `-s -w` (no symbol
    table, no DWARF; the pclntab stays). The binary lands in
    `tests/go/.cache/<name>-<toolchain>-<stripped|full>-<hash>/<name>` and is reused by
    later calls, in this process or another, while the sources and flags are the same.
    """
    source_dir = source_dir.resolve()
    name = source_dir.name
    if not (source_dir / "go.mod").is_file():
        raise GoBuildError(f"{source_dir} has no go.mod")
    go = _require_go()
    # The machine's go may change under us: put its version in the key.
    tc_key = toolchain or f"local:{go_version(None)}"
    ldflags = " ".join(x for x in ("-s -w" if stripped else "", extra_ldflags) if x)
    # The binary records its source paths (no -trimpath): a moved tree builds anew.
    digest = _source_hash(source_dir, [str(source_dir), tc_key, ldflags, "cgo=0"])
    tag = f"{name}-{toolchain or 'local'}-{'stripped' if stripped else 'full'}-{digest}"
    out_dir = CACHE_DIR / tag
    binary = out_dir / name
    if binary.is_file():
        return binary
    with _locked(CACHE_DIR / f"{tag}.lock"):
        if binary.is_file():  # another worker built it while we waited
            return binary
        tmp_dir = CACHE_DIR / f"{tag}.tmp{os.getpid()}"
        shutil.rmtree(tmp_dir, ignore_errors=True)
        tmp_dir.mkdir(parents=True)
        cmd = [go, "build", "-o", str(tmp_dir / name)]
        if ldflags:
            cmd.append(f"-ldflags={ldflags}")
        cmd.append(".")
        try:
            proc = subprocess.run(
                cmd,
                cwd=source_dir,
                env=go_env(toolchain),
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as e:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise GoBuildError(f"building {name} with {toolchain or 'local go'} timed out") from e
        if proc.returncode != 0:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise GoBuildError(
                f"building {name} with {toolchain or 'local go'} failed "
                f"({' '.join(cmd)}):\n{proc.stderr.strip()}"
            )
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(tmp_dir, out_dir)
    return binary


@dataclass
class Fixture:
    """A started Go program and its ready report. Use as a context manager."""

    proc: subprocess.Popen[bytes]
    report: dict[str, Any]
    args: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        """Kill the program (SIGKILL) and reap it. Idempotent."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Fixture:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child: SIGKILL it when the process that started it dies, so a test run
    that is killed or crashes leaves no fixture spinning on the CPUs."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _read_ready_line(proc: subprocess.Popen[bytes], timeout: float, what: str) -> bytes:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.startswith(READY_PREFIX.encode()):
                return line[len(READY_PREFIX) :]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FixtureError(
                f"{what} printed no READY line within {timeout:.0f} s "
                f"(stdout so far: {buf[-500:]!r})"
            )
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            rc = proc.wait(timeout=10)
            raise FixtureError(f"{what} exited with status {rc} before READY")
        buf += chunk


def start_fixture(
    binary: Path,
    *args: str,
    timeout: float = READY_TIMEOUT_S,
    env: dict[str, str] | None = None,
    stderr: IO[bytes] | None = None,
) -> Fixture:
    """Start `binary` with `args`, wait for its `READY {json}` line and parse it.

    Raises FixtureError (after killing the program) if it exits first, prints a report
    that is not a JSON object, or is not ready within `timeout` seconds. The program's
    stderr goes to ours, or to `stderr` (a file: a crash dump can be read back).
    """
    argv = [str(binary), *args]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env,
        preexec_fn=_die_with_parent,
    )
    what = f"{binary.name} (pid {proc.pid})"
    try:
        raw = _read_ready_line(proc, timeout, what)
        try:
            report = json.loads(raw)
        except ValueError as e:
            raise FixtureError(f"{what}: READY report is not JSON: {e}") from e
        if not isinstance(report, dict):
            raise FixtureError(f"{what}: READY report is not a JSON object")
    except BaseException:
        fixture = Fixture(proc=proc, report={}, args=list(args))
        fixture.stop()
        raise
    return Fixture(proc=proc, report=report, args=list(args))
