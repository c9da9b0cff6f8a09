"""Helpers for the dynamic-event tests: the eventfixture, the `trace` CLI run as a user
runs it, the target's code bytes against its file, and reading the trace's tables.

The truth is the fixture's (tests/go/README.md, "eventfixture report"): the trace's
tables are compared with it, never with numbers written here.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from sideeye_tui.capture import linux
from tests.go.build import EVENTFIXTURE, Fixture, build_go, start_fixture

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLI = PROJECT_ROOT / ".venv" / "bin" / "sideeye-tui"

# name -> (toolchain, stripped), as in tests/capture/support.py.
BUILDS: dict[str, tuple[str | None, bool]] = {
    "local": (None, False),
    "go1.24.13": ("go1.24.13", False),
    "go1.22.12": ("go1.22.12", False),
    "local-stripped": (None, True),
}
TOOLCHAIN_BUILDS = ("local", "go1.24.13", "go1.22.12")

INT3 = 0xCC
ATTACH_TIMEOUT_S = 300.0  # analysis and compiling the probe on a busy 2-core machine
END_TIMEOUT_S = 90.0  # writing everything after the end
TRUTH_TIMEOUT_S = 60.0


@functools.cache
def fixture_binary(build: str) -> Path:
    toolchain, stripped = BUILDS[build]
    return build_go(EVENTFIXTURE, toolchain=toolchain, stripped=stripped)


@functools.cache
def unstripped_twin(build: str) -> Path:
    """The same program with its symbol table (a stripped build has none to read)."""
    toolchain, _ = BUILDS[build]
    return build_go(EVENTFIXTURE, toolchain=toolchain, stripped=False)


def start_eventfixture(build: str, truth: Path, *args: str) -> Fixture:
    return start_fixture(fixture_binary(build), "-truth", str(truth), "-lifetime", "5m", *args)


def wait_truth(path: Path, round_: int, timeout: float = TRUTH_TIMEOUT_S) -> dict[str, Any]:
    """The fixture's truth of round `round_`, once written."""
    deadline = time.monotonic() + timeout
    while True:
        if path.exists():
            truth = json.loads(path.read_text())
            assert isinstance(truth, dict)
            if truth["round"] >= round_:
                assert truth["round"] == round_, "a round ran that the test did not ask for"
                return truth
        assert time.monotonic() < deadline, f"no truth of round {round_} in {path}"
        time.sleep(0.02)


def run_round(fx: Fixture, truth: Path, round_: int) -> dict[str, Any]:
    os.kill(fx.pid, signal.SIGUSR1)
    return wait_truth(truth, round_)


# ---- the target's code ---------------------------------------------------------------


@dataclass(frozen=True)
class Code:
    """The executable's text section and function symbols (Go binaries are not PIE:
    file addresses are the process's)."""

    addr: int
    data: bytes
    starts: tuple[int, ...]
    names: tuple[str, ...]
    sizes: tuple[int, ...]

    def function_range(self, name: str) -> tuple[int, int]:
        i = self.names.index(name)
        return self.starts[i], self.starts[i] + self.sizes[i]

    def symbol_at(self, pc: int) -> str | None:
        i = bisect.bisect_right(self.starts, pc) - 1
        if i >= 0 and self.starts[i] <= pc < self.starts[i] + self.sizes[i]:
            return self.names[i]
        return None


@functools.cache
def code_of(binary: Path) -> Code:
    with binary.open("rb") as f:
        elf = ELFFile(f)
        text = elf.get_section_by_name(".text")
        assert text is not None
        symtab = elf.get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection), f"{binary} has no symbol table"
        funcs = sorted(
            (s["st_value"], s.name, s["st_size"])
            for s in symtab.iter_symbols()
            if s["st_info"]["type"] == "STT_FUNC" and s["st_size"] > 0
        )
        return Code(
            addr=text["sh_addr"],
            data=text.data(),
            starts=tuple(f[0] for f in funcs),
            names=tuple(f[1] for f in funcs),
            sizes=tuple(f[2] for f in funcs),
        )


def changed_bytes(pid: int, code: Code, lo: int | None = None, hi: int | None = None) -> list[int]:
    """Addresses in [lo, hi) (default: the whole text) where the process's code differs
    from the file's."""
    lo = code.addr if lo is None else lo
    hi = code.addr + len(code.data) if hi is None else hi
    live = linux.read_memory(pid, lo, hi - lo)
    base = lo - code.addr
    return [lo + i for i, b in enumerate(live) if b != code.data[base + i]]


def wait_probes_in(
    pid: int, code: Code, functions: list[str], proc: subprocess.Popen[bytes]
) -> None:
    """Wait until every function's code holds a breakpoint (an int3 the file does not
    have): the trace's uprobes are in place there. Fails if the trace exits first."""
    deadline = time.monotonic() + ATTACH_TIMEOUT_S
    ranges = [code.function_range(f) for f in functions]
    while True:
        done = True
        for lo, hi in ranges:
            diff = changed_bytes(pid, code, lo, hi)
            if not diff:
                done = False
                break
            live = linux.read_memory(pid, lo, hi - lo)
            assert all(live[a - lo] == INT3 for a in diff), "the target's code changed"
        if done:
            return
        assert proc.poll() is None, f"trace exited ({proc.returncode}) before its probes were in"
        assert time.monotonic() < deadline, f"no breakpoints in {functions}"
        time.sleep(0.05)


def wait_code_restored(pid: int, code: Code, timeout: float = 10.0) -> list[int]:
    """Wait until the target's text is the file's again; the addresses still differing."""
    deadline = time.monotonic() + timeout
    while True:
        diff = changed_bytes(pid, code)
        if not diff or time.monotonic() > deadline:
            return diff
        time.sleep(0.05)


# ---- the trace CLI -------------------------------------------------------------------


@dataclass
class Trace:
    """A running `sideeye-tui trace`; stop() ends it as a user does (SIGINT)."""

    proc: subprocess.Popen[bytes]
    db: Path
    argv: list[str]
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)

    def pump(self, timeout: float = 0.0) -> None:
        """Read what the trace printed so far (its pipes must not fill up)."""
        fds = [p.fileno() for p in (self.proc.stdout, self.proc.stderr) if p and not p.closed]
        if not fds:
            return
        ready, _, _ = select.select(fds, [], [], timeout)
        for fd in ready:
            chunk = os.read(fd, 1 << 20)
            assert self.proc.stdout is not None
            (self.stdout if fd == self.proc.stdout.fileno() else self.stderr).extend(chunk)

    def json_lines(self) -> list[dict[str, Any]]:
        """The --json objects printed so far (complete lines only)."""
        out = []
        complete = bytes(self.stdout).rpartition(b"\n")[0]
        for line in complete.decode().splitlines():
            if line.strip():
                obj = json.loads(line)
                assert isinstance(obj, dict), line
                out.append(obj)
        return out

    def wait_json(
        self, kind: str = "probe", timeout: float = ATTACH_TIMEOUT_S, after: float = 0.0
    ) -> None:
        """Wait for a --json object of `kind` (a probe line's `t` at or after `after`)."""
        deadline = time.monotonic() + timeout
        while True:
            self.pump(0.1)
            if any(
                o.get("type") == kind and (kind != "probe" or o["t"] >= after)
                for o in self.json_lines()
            ):
                return
            assert self.proc.poll() is None or kind == "end", (
                f"trace exited ({self.proc.returncode}): {self.stderr.decode()[-2000:]}"
            )
            assert time.monotonic() < deadline, (
                f"no --json {kind} line: {self.stderr.decode()[-2000:]}"
            )

    def wait(self, timeout: float = END_TIMEOUT_S) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"trace did not end: {self.stderr.decode()[-2000:]}"
            self.pump(0.1)
        for _ in range(100):  # drain the pipes
            before = len(self.stdout) + len(self.stderr)
            self.pump(0.0)
            if len(self.stdout) + len(self.stderr) == before:
                break
        return self.proc.returncode

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        for p in (self.proc.stdout, self.proc.stderr):
            if p is not None:
                p.close()

    def stderr_lines(self) -> list[str]:
        return [ln for ln in bytes(self.stderr).decode().splitlines() if ln.strip()]


def trace_argv(pids: list[int], db: Path, *args: str) -> list[str]:
    return [str(CLI), "trace", *map(str, pids), *args, "-o", str(db)]


@contextlib.contextmanager
def tracing(pids: list[int], db: Path, *args: str) -> Iterator[Trace]:
    """Start `sideeye-tui trace PIDS ARGS -o DB`; killed at the end if still running."""
    argv = trace_argv(pids, db, *args)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tr = Trace(proc=proc, db=db, argv=argv)
    try:
        yield tr
    finally:
        tr.kill()


def run_trace(
    pids: list[int], db: Path, *args: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """A trace expected to end by itself (bad input)."""
    return subprocess.run(
        trace_argv(pids, db, *args), capture_output=True, text=True, timeout=timeout
    )


def write_spec(path: Path, probes: dict[str, dict[str, Any]]) -> Path:
    """A spec with [probes."LOC"] tables (lists of strings and strings only)."""
    lines = []
    for loc, keys in probes.items():
        lines.append(f"[probes.{json.dumps(loc)}]")
        for k, v in keys.items():
            lines.append(f"{k} = {json.dumps(v)}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


# ---- the trace's tables --------------------------------------------------------------


def connect(db: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(db), read_only=True)


def rows(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def probe_ids(con: duckdb.DuckDBPyConnection, trace_id: int) -> dict[str, int]:
    """location as written -> probe_id (one target process)."""
    got = rows(con, "SELECT location, probe_id FROM probes WHERE trace_id = ?", trace_id)
    out = {r["location"]: r["probe_id"] for r in got}
    assert len(out) == len(got), f"a location has two probe ids: {got}"
    return out


def capture_rows(con: duckdb.DuckDBPyConnection, table: str, trace_id: int) -> list[dict[str, Any]]:
    """A probe's capture table joined to its events, in time order; JSON columns parsed."""
    types = {r[0]: r[1] for r in con.execute(f'DESCRIBE "{table}"').fetchall()}
    got = rows(
        con,
        f'SELECT c.*, e.ts_ns AS "$ts_ns", e.kind AS "$kind" FROM "{table}" c '
        "JOIN events e USING (trace_id, event_id) WHERE c.trace_id = ? "
        "ORDER BY e.ts_ns, e.event_id",
        trace_id,
    )
    for r in got:
        for k, v in r.items():
            if types.get(k) == "JSON" and isinstance(v, str):
                r[k] = json.loads(v)
    return got


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }


def log2_bucket(ns: int) -> int:
    return int(ns).bit_length() - 1
