#!/usr/bin/env bash
# The project's single test command: install the test peers (fast no-op when
# already installed), then run the whole workspace's tests.
#   scripts/test.sh [extra cargo test args...]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
"$ROOT/scripts/install-peers.sh"
cd "$ROOT"
exec cargo test --workspace "$@"
