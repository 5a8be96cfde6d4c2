#!/usr/bin/env bash
# Benchmarks: what connleak costs, next to the tools users would otherwise use.
#
#   bash scripts/bench.sh           everything (~10-15 min on 2 cores): writes BENCHMARKS.md
#   bash scripts/bench.sh --smoke   micro-benchmarks for about a second, as a sanity check
#                                   (prints a table, exits non-zero if the shim misbehaves;
#                                   BENCHMARKS.md is left alone)
#
# Installs what is missing (as root), builds in release mode in build-bench/
# (-DCONNLEAK_BUILD_BENCH=ON, at most 2 jobs), starts a throwaway PostgreSQL and
# MariaDB under a temp dir, runs scripts/bench_run.py, and stops and removes
# everything it started, whatever happens.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-bench
jobs=$(( $(nproc) < 2 ? $(nproc) : 2 ))
smoke=0
case "${1:-}" in
  --smoke) smoke=1 ;;
  "") ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac
exec </dev/null

# Peers and tools used only here, not by the tests: installed on demand.
BENCH_PACKAGES=(valgrind heaptrack liblsan0)

"$root/scripts/install-deps.sh"
if [[ $smoke -eq 0 ]]; then
  missing=()
  for pkg in "${BENCH_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) -ne 0 ]]; then
      echo "bench: missing packages: ${missing[*]} (run as root to install)" >&2
      exit 1
    fi
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
    echo "bench: installed ${missing[*]}"
  fi
fi

echo "bench: building (Release) in $build"
mkdir -p "$build"
if ! { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCONNLEAK_BUILD_TESTS=OFF \
         -DCONNLEAK_BUILD_BENCH=ON && cmake --build "$build" -j "$jobs" --target bench_all; } \
     >"$build/bench-build.log" 2>&1; then
  tail -n 40 "$build/bench-build.log" >&2
  echo "bench: build failed (full log: $build/bench-build.log)" >&2
  exit 1
fi

if [[ $smoke -eq 1 ]]; then
  exec python3 "$root/scripts/bench_run.py" --build "$build" --smoke
fi

# The server users (postgres, mysql) must be able to traverse the temp dir.
work=$(mktemp -d /tmp/connleak-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
  "$root/scripts/pg-server.sh" stop "$work/pg" >/dev/null 2>&1 || true
  "$root/scripts/mariadb-server.sh" stop "$work/my" >/dev/null 2>&1 || true
  rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

args=(--build "$build" --work "$work/runs" --out "$root/BENCHMARKS.md")
mkdir -p "$work/runs"
if "$root/scripts/pg-server.sh" start "$work/pg"; then
  args+=(--pg-env "$work/pg/env")
else
  echo "bench: PostgreSQL did not start; its sections are skipped" >&2
fi
if "$root/scripts/mariadb-server.sh" start "$work/my"; then
  args+=(--mysql-env "$work/my/env")
else
  echo "bench: MariaDB did not start; its section is skipped" >&2
fi

python3 "$root/scripts/bench_run.py" "${args[@]}"
echo "bench: wrote $root/BENCHMARKS.md"
