#!/usr/bin/env bash
# Instructions per call of a gateway binary, measured with valgrind's callgrind: deterministic,
# unlike wall-clock figures on a shared machine, so small changes can be compared.
#
#   benches/callgrind-gateway.sh GATEWAY_BINARY [ERA] [CALLS]
#
# Starts bench-fixture over HTTP and the gateway (under callgrind) in front of it, warms up with
# 300 calls, zeroes the counters, runs CALLS (default 2000) `tools/call echo` at concurrency 4 in
# ERA (session or stateless, default session), dumps, and prints the gateway's instructions per
# call. The profile is left in $OUT (default /tmp/callgrind-gateway) for callgrind_annotate.
# $ARGUMENTS, if set, is the echo's arguments as JSON (loadgen's --arguments) for larger calls.
# Needs the release binaries of the benches crate in $CARGO_TARGET_DIR (default target/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
GATEWAY="$1"
ERA="${2:-session}"
CALLS="${3:-2000}"
OUT="${OUT:-/tmp/callgrind-gateway}"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
mkdir -p "$OUT"
rm -f "$OUT"/callgrind.out*

"$BIN/bench-fixture" --listen 127.0.0.1:0 >"$OUT/fixture.out" 2>"$OUT/fixture.err" &
FIXTURE=$!
GW=""
cleanup() {
  [[ -n "$GW" ]] && kill "$GW" 2>/dev/null || true
  kill "$FIXTURE" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q listening "$OUT/fixture.out" 2>/dev/null && break; sleep 0.05; done
UPSTREAM="$(sed -n 's/^listening on //p' "$OUT/fixture.out")"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
printf '[gateway]\nprefix = "never"\n[servers.fixture]\nurl = "%s"\n' "$UPSTREAM" >"$OUT/gateway.toml"
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
  "$GATEWAY" serve --config "$OUT/gateway.toml" --listen "127.0.0.1:$PORT" \
  >"$OUT/gateway.out" 2>"$OUT/gateway.err" &
GW=$!
URL="http://127.0.0.1:$PORT/mcp"
LOAD=(--url "$URL" --era "$ERA")
if [[ -n "${ARGUMENTS:-}" ]]; then LOAD+=(--arguments "$ARGUMENTS"); fi
for _ in $(seq 600); do
  "$BIN/loadgen" "${LOAD[@]}" --count 1 --warmup 0 >/dev/null 2>&1 && break
  sleep 0.1
done
"$BIN/loadgen" "${LOAD[@]}" --concurrency 4 --count 300 --warmup 0 >/dev/null
callgrind_control -z "$GW" >/dev/null
"$BIN/loadgen" "${LOAD[@]}" --concurrency 4 --count "$CALLS" --warmup 0 >"$OUT/load.json"
callgrind_control -d "$GW" >/dev/null
sleep 1
DUMP="$(ls -t "$OUT"/callgrind.out.*.* 2>/dev/null | head -1)"
TOTAL="$(callgrind_annotate "$DUMP" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')"
# Each worker's connect (session era: initialize + initialized) and DELETE fall in the window too;
# with 4 workers that is a rounding error next to CALLS calls.
echo "era=$ERA calls=$CALLS instructions=$TOTAL per_call=$((TOTAL / CALLS)) profile=$DUMP"
