#!/usr/bin/env bash
# Builds the gateway and the benchmark binaries in release mode, then runs the gateway benchmark
# (benches/src/bin/bench-gateway.rs); arguments go to the runner, e.g. --rounds 5 --out FILE.
#   benches/bench-gateway.sh [--duration 2] [--rounds 3] [--out /tmp/bench.json]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
cargo build --release -p mcp-gateway-cli -p benches --bins
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
exec "$TARGET/release/bench-gateway" "$@"
