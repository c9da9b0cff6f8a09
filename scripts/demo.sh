#!/usr/bin/env bash
# What `make demo` runs: build the demo Go service, start it, snapshot every goroutine
# of it with sideeye-tui, open the explorer on the snapshot (on a terminal) or print the
# summary (without one, as in CI), stop the service.
#
# Environment:
#   DEMO_DB      DuckDB file the snapshot is appended to (default build/demo.duckdb)
#   DEMO_WARMUP  seconds of load before the snapshot (default 2)
#   DEMO_BACKEND ebpf or ptrace (default ebpf)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "demo: $*"; }
die() { echo "demo: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
  die "run as root (sudo make demo): a snapshot pauses the service with ptrace and loads an eBPF probe"
fi
if [ ! -x .venv/bin/sideeye-tui ]; then
  die ".venv is missing; run 'make demo' (it sets up the system and the venv first)"
fi
# sudo resets PATH; the Go tarball's usual home is /usr/local/go.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null 2>&1 || die "no Go toolchain on PATH (the demo service is built from demo/service)"

db=${DEMO_DB:-build/demo.duckdb}
warmup=${DEMO_WARMUP:-2}
backend=${DEMO_BACKEND:-ebpf}
bin=build/demo-service
mkdir -p build "$(dirname "$db")"

say "building $bin with $(go env GOVERSION)"
(cd demo/service && GOTOOLCHAIN=local go build -o ../../"$bin" .)

out=$(mktemp -t sideeye-demo.XXXXXX)
svc=
nap=
cleanup() {
  local rc=$?
  [ -z "$nap" ] || kill "$nap" 2>/dev/null || true
  if [ -n "$svc" ] && kill -0 "$svc" 2>/dev/null; then
    kill "$svc" 2>/dev/null || true
    wait "$svc" 2>/dev/null || true
    say "stopped the service (pid $svc)"
  fi
  rm -f "$out"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# -lifetime: even if this script is killed with SIGKILL, the service ends on its own.
"$bin" -lifetime 10m >"$out" &
svc=$!

ready=
for _ in $(seq 1 300); do  # up to 30 s
  ready=$(grep -m1 '^READY ' "$out" || true)
  [ -n "$ready" ] && break
  kill -0 "$svc" 2>/dev/null || die "the service exited before it was ready"
  sleep 0.1
done
[ -n "$ready" ] || die "the service did not print READY within 30 s"
pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' <<<"$ready")
url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' <<<"$ready")
[ "$pid" = "$svc" ] || die "READY names pid '$pid', expected $svc"
say "service ready: pid $pid, $url, under load from its own clients"

# Let requests queue on the hot account's lock. `wait` (unlike a foreground sleep)
# lets a signal's trap run at once.
sleep "$warmup" &
nap=$!
wait "$nap"
nap=

say "snapshot: .venv/bin/sideeye-tui snapshot $pid -o $db --backend $backend"
.venv/bin/sideeye-tui snapshot "$pid" -o "$db" --backend "$backend"
kill -0 "$svc" 2>/dev/null || die "the service is gone after the snapshot"
say "the service kept running: $(sed -n 's/^State:\s*//p' "/proc/$svc/status")"

if [ -t 1 ]; then
  say "opening the explorer on $db (q quits; the service runs until then)"
  .venv/bin/sideeye-tui open "$db"
  exit 0
fi

echo
say "summary: .venv/bin/sideeye-tui summary $db"
echo
.venv/bin/sideeye-tui summary "$db"
echo
say "the snapshot stays in $db: query it with any DuckDB client (tables snapshots,"
say "processes, goroutines, frames, and those of .sideeye/demo-service.toml: inflight,"
say "lock_waiters linked to lock_holders), or again with: .venv/bin/sideeye-tui summary $db --top 0"
