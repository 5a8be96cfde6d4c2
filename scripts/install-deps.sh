#!/usr/bin/env bash
# Install the Debian packages connleak needs to build, test and run its demo.
# Only packages that are not already installed are fetched, so re-running is
# cheap and does not touch the network when everything is present.
# Safe for CI: never reads stdin and never prompts.
set -euo pipefail

# Single source of truth for the dependency list.
PACKAGES=(
  build-essential cmake pkg-config
  libpq-dev libpqxx-dev libmariadb-dev
  libunwind-dev libspdlog-dev libfmt-dev
  libxxhash-dev  # header-only (XXH_INLINE_ALL): keyed hash of a target's inputs, collector/policy/target_memo.cpp
  libdw-dev  # offline symbolization of a killed process's journal (cli/offline_symbolize.cpp)
  libboost-dev libboost-stacktrace-dev
  nlohmann-json3-dev libcli11-dev
  googletest libgtest-dev libgmock-dev
  patchelf
  postgresql postgresql-client
  mariadb-server mariadb-client
  python3 python3-psycopg2 python3-psycopg python3-mysqldb python3-sqlalchemy
  python3-asyncpg python3-aiomysql python3-pymysql python3-greenlet python3-psycopg-pool
  python3-pytest python3-pytest-asyncio  # the pytest plugin (python/connleak/pytest_plugin.py)
  python3-pytest-xdist  # the pytest plugin under `pytest -p xdist -n N` (one process per worker)
  procps
  libbenchmark-dev
  # Other runtimes' drivers (tests/e2e/runtime_test.cpp); Node's come from npm
  # (scripts/node-deps.sh).
  perl libdbi-perl libdbd-mariadb-perl libdbd-pg-perl php-cli php-mysql php-pgsql
  # (perl depends on libperl5.36, which ships $Config{archlibexp}/CORE/perl.h:
  # the Perl frame reader, shim/perl/perl.cmake, is built against it; no -dev.)
  php-dev  # the engine's headers: PHP frames (shim/php/php_stack.cpp) are read with its layouts
  ruby ruby-pg
  ruby3.1-dev  # Ruby's String layout for the Ruby frame reader (shim/ruby/ruby_object.cpp)
  nodejs
  # Java JDBC drivers, run as single-file source programs (tests/e2e/java).
  default-jdk-headless libpostgresql-jdbc-java libmariadb-java
  clang clang-format libclang-rt-dev  # libFuzzer and the sanitizer runtimes for scripts/fuzz.sh
  # Pictures (issue 18): the HTML timeline is opened in headless Chromium;
  # promtool (in prometheus) checks the metrics text.
  chromium prometheus
)
# Debian's npm package, unless an npm is already there (NodeSource's nodejs
# bundles one and conflicts with Debian's).
command -v npm >/dev/null || PACKAGES+=(npm)

# apt must never wait for an answer (debconf prompts, conffile questions),
# even when stdin is a terminal or closed.
export DEBIAN_FRONTEND=noninteractive
exec </dev/null

missing=()
for pkg in "${PACKAGES[@]}"; do
  # dpkg-query exits non-zero for unknown packages; treat that as missing.
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all dependencies present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]} (run as root to install)" >&2
  exit 1
fi

# Package lists may be absent or stale on a fresh image, so refresh first.
apt-get update -qq >/dev/null
# --force-confold: keep existing config files without asking. Output goes to
# /dev/null so the script prints one summary line; apt errors go to stderr.
apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${missing[@]}" >/dev/null

echo "install-deps: installed ${missing[*]}"
