#!/usr/bin/env bash
# `npm run demo`: the one command that sets up and runs the demo on a fresh machine.
# Installs the npm dependencies if they are missing; the demo itself builds the Temporal CLI
# the first time (several minutes) if it is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules/@temporalio/worker ]; then
  echo "demo: installing npm dependencies (npm ci)..."
  npm ci --no-audit --no-fund
fi
export PATH="$PATH:/usr/local/go/bin"
exec node --import tsx scripts/demo.ts "$@"
