#!/usr/bin/env bash
# Regenerates docs/timeline.png, the README's picture of the HTML timeline:
# renders the given connleak reports with `connleak report --format html` and
# has headless Chromium draw the page with the first leaked lane clicked.
#   bash scripts/timeline-screenshot.sh BUILD_DIR REPORT.json...
# (tests/cli/picture_test.cpp keeps the same picture of its real run in
# BUILD_DIR/test-artifacts/timeline.png.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: timeline-screenshot.sh BUILD_DIR REPORT.json...}
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/bin/connleak" report --format html --fail-on never -o "$work/timeline.html" "$@"
# The lane to click: the first leaked connection, as the page keys it (c<pid>-<id>).
key=$(grep -o '"id":[0-9]*,"pid":[0-9]*,[^}]*"status":"leaked"' "$work/timeline.html" | head -1 |
  sed -E 's/"id":([0-9]+),"pid":([0-9]+).*/c\2-\1/')
mkdir -p "$root/docs"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,600 \
  --virtual-time-budget=10000 --screenshot="$root/docs/timeline.png" \
  "file://$work/timeline.html#select=$key" 2>/dev/null
echo "timeline-screenshot: wrote $root/docs/timeline.png"
