#!/usr/bin/env bash
# The shim exports exactly its hooks (the names in shim/hooks/*.inc, plus the
# dlsym and dlopen hooks) and the public API (connleak_*): a hook written by hand but not
# listed would silently stop interposing, and anything else exported could
# interpose on the host's own symbols.
#   scripts/check-exports.sh path/to/libconnleak.so
set -euo pipefail
lib=$1
root=$(cd "$(dirname "$0")/.." && pwd)
listed=$( (grep -ohP '^CONNLEAK_(HOOK|COMMAND|LIBC)\(\K\w+' "$root"/shim/hooks/*.inc; echo dlsym; echo dlopen) | sort -u)
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TWi]$/ {sub(/@.*/, "", $3); print $3}' | grep -v '^connleak_' | sort -u)
handwritten=$(grep -rhoP 'CONNLEAK_EXPORT\s+[\w\s\*]*?\b\K\w+(?=\()' "$root/shim" | grep -v '^connleak_' | sort -u)
status=0
if [[ "$listed" != "$exported" ]]; then
  echo "exported symbols differ from the hook lists (< listed, > exported):"
  diff <(echo "$listed") <(echo "$exported") || true
  status=1
fi
missing=$(comm -23 <(echo "$handwritten") <(echo "$exported"))
if [[ -n "$missing" ]]; then
  echo "CONNLEAK_EXPORT functions missing from the hook lists (they would not interpose): $missing"
  status=1
fi
api=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -c '^connleak_' || true)
[[ "$api" -ge 1 ]] || { echo "no connleak_* API exported"; status=1; }
[[ $status -eq 0 ]] && echo "exports: $(echo "$listed" | wc -l) hooks and $api API functions, nothing else"
exit $status
