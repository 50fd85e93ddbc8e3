#!/usr/bin/env bash
# Install the third-party MCP peers the tests run against, from the committed locks:
#   peers/package-lock.json       -> peers/node_modules  (npm ci)
#   peers/requirements-peers.lock -> peers/.venv         (pip install --no-deps)
# Idempotent: each half is skipped when a stamp file holding the sha256 of its lock
# matches, so a second run is a fast no-op. Works from any cwd.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PEERS="$ROOT/peers"
NPM_LOCK="$PEERS/package-lock.json"
PY_LOCK="$PEERS/requirements-peers.lock"
NODE_MODULES="$PEERS/node_modules"
NPM_STAMP="$NODE_MODULES/.install-peers.sha256"
VENV="$PEERS/.venv"
PY_STAMP="$VENV/.install-peers.sha256"
PYTHON="${PYTHON:-python3}"

log() { printf 'install-peers: %s\n' "$*"; }
die() { printf 'install-peers: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1fs", e - s }'; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
stamp_matches() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

[[ -f "$NPM_LOCK" ]] || die "missing $NPM_LOCK"
[[ -f "$PY_LOCK" ]] || die "missing $PY_LOCK"
command -v sha256sum >/dev/null || die "sha256sum not found"

# --- npm peers -------------------------------------------------------------------
npm_sum="$(sha "$NPM_LOCK")"
if [[ -d "$NODE_MODULES" ]] && stamp_matches "$NPM_STAMP" "$npm_sum"; then
  log "npm peers up to date"
else
  command -v npm >/dev/null || die "npm not found (Node 20+ required)"
  log "npm ci in peers/ (lock ${npm_sum:0:12}) ..."
  t0="$(now)"
  # npm ci removes node_modules first, so a stale or half-written tree is never reused.
  # --loglevel=error hides the expected EBADENGINE/install-scripts warnings (Inspector wants
  # Node 22 in its engines field but its CLI works on Node 20).
  (cd "$PEERS" && npm ci --no-audit --no-fund --loglevel=error)
  printf '%s\n' "$npm_sum" >"$NPM_STAMP"
  log "npm peers installed in $(since "$t0")"
fi

# --- Python peers ----------------------------------------------------------------
py_sum="$(sha "$PY_LOCK")"
if [[ -x "$VENV/bin/python" ]] && stamp_matches "$PY_STAMP" "$py_sum" \
   && "$VENV/bin/python" -c '' 2>/dev/null; then
  log "python peers up to date"
else
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
  log "creating peers/.venv and installing requirements-peers.lock (${py_sum:0:12}) ..."
  t0="$(now)"
  # Recreate from scratch so packages dropped from the lock do not linger.
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$PY_LOCK"
  "$VENV/bin/python" -m pip check --disable-pip-version-check >/dev/null \
    || die "pip check failed in peers/.venv"
  printf '%s\n' "$py_sum" >"$PY_STAMP"
  log "python peers installed in $(since "$t0")"
fi
