#!/usr/bin/env bash
# Runs a test suite under `connleak run` and leaves what CI systems read:
#
#   OUT/connleak.sarif       SARIF 2.1.0 for code scanning (GitHub, GitLab, Azure DevOps)
#   OUT/connleak-junit.xml   JUnit XML, one failing test case per leaking site
#   OUT/connleak.txt         the human report
#   OUT/reports/             every process's connleak.<pid>.json
#
# usage: ci-leak-check.sh [-o OUT] [-s SUPPRESSIONS] [--fail-on leaked|flagged|never]
#                         [--threshold D] [--txn-threshold D] -- CMD [ARGS...]
#
# Exit status: the suite's own when it failed; else 23 when connleak found
# something --fail-on counts (default: leaked); else 0. 2: a usage error.
# The connleak program is $CONNLEAK, else `connleak` on PATH, else the one
# built next to this script (build/bin/connleak).
set -euo pipefail

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
  exit 2
}

out=connleak-results
suppressions=()
fail_on=leaked
run_flags=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -o) [[ $# -ge 2 ]] || usage; out=$2; shift 2 ;;
    -s) [[ $# -ge 2 ]] || usage; suppressions=(--suppressions "$2"); shift 2 ;;
    --fail-on) [[ $# -ge 2 ]] || usage; fail_on=$2; shift 2 ;;
    --threshold | --txn-threshold) [[ $# -ge 2 ]] || usage; run_flags+=("$1" "$2"); shift 2 ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
[[ $# -gt 0 ]] || usage

connleak=${CONNLEAK:-}
if [[ -z $connleak ]]; then
  if command -v connleak >/dev/null; then
    connleak=connleak
  else
    connleak="$(cd "$(dirname "$0")/.." && pwd)/build/bin/connleak"
  fi
fi
[[ -x $connleak ]] || command -v "$connleak" >/dev/null || { echo "ci-leak-check: no connleak program ($connleak)" >&2; exit 2; }

mkdir -p "$out"
# Reports of an earlier run in the same workspace would be merged into this one.
rm -rf "$out/reports"

# --fail-on never: the suite's status comes back untouched; the leak verdict
# is taken below from the same reports, with the same suppressions.
status=0
"$connleak" run --report-dir "$out/reports" --fail-on never "${suppressions[@]}" "${run_flags[@]}" -- "$@" || status=$?

# --allow-empty: a suite that never connected is clean, and CI still gets its files.
render() {  # format, file
  "$connleak" report --allow-empty --fail-on never --source-root "$PWD" "${suppressions[@]}" \
    --format "$1" -o "$out/$2" "$out/reports"
}
render sarif connleak.sarif
render junit connleak-junit.xml
verdict=0
"$connleak" report --allow-empty --fail-on "$fail_on" "${suppressions[@]}" -o "$out/connleak.txt" "$out/reports" ||
  verdict=$?

echo "ci-leak-check: results in $out/ (connleak.sarif, connleak-junit.xml, connleak.txt)" >&2
if [[ $status -ne 0 ]]; then exit "$status"; fi
exit "$verdict"
