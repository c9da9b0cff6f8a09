#!/usr/bin/env bash
# Builds the real service the benches and README figures use: etcd v3.6.16 (a 36 MB
# gRPC server, module proxy sources) and its load generator (watch streams, puts at a
# bounded rate, a lease), into build/realsvc/. Idempotent; needs the Go module proxy once.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/realsvc
mkdir -p "$out"
for name in etcd load; do
  if [ ! -x "$out/$name" ] || [ "bench/realsvc/$name/main.go" -nt "$out/$name" ]; then
    (cd "bench/realsvc/$name" && GOFLAGS=-buildvcs=false GOTOOLCHAIN=local go build -o "../../../$out/$name" .)
  fi
done
echo "$out/etcd $out/load"
