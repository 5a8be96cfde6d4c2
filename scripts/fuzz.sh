#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan+UBSan, coverage
# instrumented collector) and runs each for SECONDS (default 20), starting from
# the seed corpus in tests/fuzz/corpus/<target>. Fails on the first crash,
# leak, timeout or failed check, leaving the input in build-fuzz/artifacts/.
#
#   scripts/fuzz.sh                 20 s per target (what scripts/test.sh runs)
#   scripts/fuzz.sh 600             10 minutes per target
#   scripts/fuzz.sh 600 redact wire only these targets
#
# New inputs libFuzzer finds go to build-fuzz/corpus/<target>, not into the
# repository; to keep a useful one, minimise it and copy it into
# tests/fuzz/corpus/<target> (every test run replays that directory).
# Each run ends with "fuzz: <target>: N executions clean in S s".
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-20}
shift || true
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(options redact suppressions report_reader report_writers wire)
build=${CONNLEAK_FUZZ_BUILD:-$root/build-fuzz}

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (scripts/install-deps.sh installs clang and libclang-rt-dev)" >&2
  exit 1
fi
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCONNLEAK_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

for t in "${targets[@]}"; do
  work="$build/corpus/$t" artifacts="$build/artifacts/$t/" log="$build/fuzz-$t.log"
  mkdir -p "$work" "$artifacts"
  echo "== fuzz: $t for ${seconds}s"
  # -timeout: an input that takes more than 10 s counts as a hang (a crash).
  # -rss_limit_mb: so does one that needs more than 2 GB.
  # CI (CI=true) runs a seeded, bounded pass so a red build is reproducible
  # from its log; hunting new findings is a long random-seed run by hand
  # (scripts/fuzz.sh 600). Open findings are listed in README (Fuzzing).
  seed=0 runs=-1
  [[ "${CI:-}" == "true" ]] && seed=${CONNLEAK_FUZZ_SEED:-1} runs=30000
  if ! "$build/bin/fuzz_$t" -max_total_time="$seconds" -seed="$seed" -runs="$runs" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts" \
      "$work" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $t FAILED; input saved in $artifacts (full log: $log)" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "fuzz: $t: ${execs:-?} executions clean in ${seconds}s"
done
