#!/usr/bin/env bash
# Fuzzes the gateway's readers of outside input (fuzz/README.md): installs cargo-fuzz if it is
# missing, builds every target, then runs each for a bounded time, starting from its committed
# seeds (fuzz/seeds/TARGET) plus whatever earlier runs left in fuzz/corpus/TARGET.
#   scripts/fuzz.sh [SECONDS per target, default 30] [TARGET...]
# A crash, a failed property or a hang fails the script; libFuzzer names the input it saved
# under fuzz/artifacts/TARGET.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT/fuzz"

CARGO_FUZZ_VERSION="0.13.2"
SECONDS_PER_TARGET="${1:-30}"
shift || true

if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# The stable toolchain ships the AddressSanitizer runtime but accepts `-Zsanitizer` only when
# told it may use unstable flags; no nightly is needed (fuzz/README.md).
export RUSTC_BOOTSTRAP=1
# `cargo fuzz run` rebuilds unless given the flags the targets were built with.
BUILD_FLAGS=(--sanitizer address)

targets=("$@")
if (( ${#targets[@]} == 0 )); then
  mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build "${BUILD_FLAGS[@]}"
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  printf '\n---- fuzz %s for %ss ----\n' "$target" "$SECONDS_PER_TARGET"
  # The first directory receives what libFuzzer finds; the seeds are only read.
  cargo fuzz run "${BUILD_FLAGS[@]}" "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1
  printf -- '---- %s: corpus of %s inputs ----\n' "$target" "$(find "corpus/$target" -type f | wc -l)"
done
