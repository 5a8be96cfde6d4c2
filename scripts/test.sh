#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds, and runs
# every test. The end-to-end tests start a throwaway PostgreSQL (and MariaDB)
# cluster in a temp dir on loopback through CTest fixtures.
#
#   scripts/test.sh            everything: ASan+UBSan and TSan unit tests, then
#                              the release build's unit and end-to-end tests,
#                              then every fuzz target for 20 s (scripts/fuzz.sh),
#                              then clang-format over the tree (scripts/check-format.sh)
#   scripts/test.sh --quick    only the release build's tests
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
quick=0
[[ "${1:-}" == "--quick" ]] && quick=1

"$root/scripts/install-deps.sh"

configure_and_build() {  # dir, extra cmake args..., then target after --
  local dir=$1; shift
  local args=() target=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do args+=("$1"); shift; done
  [[ "${1:-}" == "--" ]] && { shift; target=(--target "$@"); }
  cmake -S "$root" -B "$dir" "${args[@]}" >/dev/null
  cmake --build "$dir" -j "$jobs" "${target[@]}"
}

if [[ $quick -eq 0 ]]; then
  # The collector and its unit tests under the sanitizers. The shim itself is
  # injected into hosts built without sanitizer runtimes, so it is covered by
  # the end-to-end suite instead.
  for san in address thread; do
    echo "== unit tests with CONNLEAK_SANITIZE=$san"
    # fuzz_targets: the fuzz targets as replayers of their corpus (label fuzz).
    configure_and_build "$root/build-$san" -DCONNLEAK_SANITIZE=$san -DCMAKE_BUILD_TYPE=Debug -- unit_tests fuzz_targets
    (cd "$root/build-$san" && ASAN_OPTIONS=detect_leaks=1 TSAN_OPTIONS=halt_on_error=1 \
      ctest -L 'unit|fuzz' --output-on-failure -j "$jobs")
  done
fi

echo "== release build: unit and end-to-end tests against real servers"
configure_and_build "$root/build"
(cd "$root/build" && ctest --output-on-failure -j "$jobs")

if [[ $quick -eq 0 ]]; then
  # libFuzzer, clang build: 20 s per target (6 targets, 2 minutes); fails on any crash.
  echo "== fuzzing (scripts/fuzz.sh 20)"
  "$root/scripts/fuzz.sh" 20
fi

if [[ $quick -eq 0 ]]; then
  echo "== formatting (scripts/check-format.sh)"
  "$root/scripts/check-format.sh"
fi
