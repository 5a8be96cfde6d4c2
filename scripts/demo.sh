#!/usr/bin/env bash
# The README's main job: on a fresh machine, install what is missing, build,
# start a throwaway PostgreSQL, run a leaky example service under the shim and
# show the report it prints and the JSON it writes. Leaves nothing running.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build" >/dev/null
cmake --build "$root/build" -j "$(nproc)" --target connleak leaky_service

work=$(mktemp -d /tmp/connleak-demo.XXXXXX)
chmod 755 "$work"
trap '"$root/scripts/pg-server.sh" stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
"$root/scripts/pg-server.sh" start "$work/pg" >/dev/null
set -a; . "$work/pg/env"; set +a

echo "== running build/bin/leaky_service under libconnleak.so"
echo "   LD_PRELOAD=build/lib/libconnleak.so CONNLEAK_OPTIONS=report_dir=$work/reports build/bin/leaky_service"
echo
status=0
LD_PRELOAD="$root/build/lib/libconnleak.so" CONNLEAK_OPTIONS="report_dir=$work/reports" \
  "$root/build/bin/leaky_service" || status=$?
echo
report=$(ls "$work"/reports/connleak.*.json)
echo "== JSON report ($report), summary and first leaked connection:"
python3 - "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps(r["summary"], indent=2))
first = next(c for c in r["connections"] if c["status"] == "leaked")
first["acquired"]["native"] = first["acquired"]["native"][:3]
print(json.dumps(first, indent=2))
PY
echo
echo "== the service exited with status $status (unchanged by connleak)"
