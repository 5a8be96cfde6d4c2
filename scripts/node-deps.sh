#!/usr/bin/env bash
# Installs the Node.js drivers the e2e tests use (tests/e2e/node/package.json,
# exact versions) into DIR/node_modules. Run by a CTest fixture; CI needs only
# `nodejs` and `npm` from Debian (scripts/install-deps.sh) and the npm registry.
#
#   scripts/node-deps.sh DIR
#
# When npm or the registry is unreachable, DIR/unavailable holds the reason
# and the script exits 0: the Node tests skip, saying why, when npm is not
# installed, and fail with the reason when the install failed.
set -euo pipefail
exec </dev/null
dir=${1:?usage: $0 DIR}
src=$(cd "$(dirname "$0")/../tests/e2e/node" && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rm -f "$dir/unavailable"
cp "$src/package.json" "$dir/package.json"
if ! command -v npm >/dev/null; then
  echo "npm is not installed" > "$dir/unavailable"
  exit 0
fi
if ! (cd "$dir" && timeout 300 npm install --no-audit --no-fund --loglevel=error >"$dir/npm.log" 2>&1); then
  echo "npm install failed (registry unreachable?): $(tail -n 3 "$dir/npm.log" | tr '\n' ' ')" > "$dir/unavailable"
  exit 0
fi
echo "node-deps: $(cd "$dir" && node -e 'for (const m of ["pg","mysql2"]) process.stdout.write(m+"@"+require(m+"/package.json").version+" ")') in $dir"
