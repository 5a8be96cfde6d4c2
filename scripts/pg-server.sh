#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for connleak's tests and demo.
#
#   scripts/pg-server.sh start DIR   # (re)create a fresh cluster in DIR
#   scripts/pg-server.sh stop DIR    # stop it and remove DIR
#
# After a successful start, DIR/env holds sourceable KEY='VALUE' lines
# (no "export"; use `set -a; . DIR/env; set +a`):
#   CONNLEAK_TEST_PG_HOST         127.0.0.1
#   CONNLEAK_TEST_PG_PORT         TCP port chosen for this cluster
#   CONNLEAK_TEST_PG_SOCKET_DIR   DIR/sock (unix socket directory)
#   CONNLEAK_TEST_PG_CONNINFO     superuser conninfo (user postgres, trust)
#   CONNLEAK_TEST_PG_APP_USER     app (password user, scram-sha-256 over TCP)
#   CONNLEAK_TEST_PG_APP_PASSWORD its password
#   CONNLEAK_TEST_PG_APP_DB       connleak (owned by app)
#   CONNLEAK_TEST_PG_BINDIR       server binary directory
# DIR/env is written last, so its existence means the server is ready.
#
# Layout of DIR: data/ (PGDATA), sock/, server.log, env, .connleak-pg-server
# (marker: this script only wipes or deletes directories carrying it, or
# empty ones, so a typo in DIR cannot rm -rf something else).
#
# Runs as root on the test machines, but PostgreSQL refuses to run as root,
# so every server-side command runs as the `postgres` OS user via runuser.
# Several clusters may run at once in different DIRs: each gets its own port.
# Every wait is bounded and nothing reads stdin.
set -euo pipefail

readonly MARKER=.connleak-pg-server
readonly APP_USER=app
readonly APP_PASSWORD=Sup3r-s3cret-pw
readonly APP_DB=connleak
readonly OS_USER=postgres
readonly START_TIMEOUT=30  # seconds pg_ctl may wait for the server
readonly PORT_ATTEMPTS=5   # retries if the chosen port is taken meanwhile

exec </dev/null            # never wait on stdin (CI, cron, ssh -n ...)
umask 022                  # parents we create must stay traversable
# Ambient PG* variables (PGHOST, PGOPTIONS, PGSERVICE...) would redirect or
# alter our own psql/pg_ctl calls; every setting below is explicit.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^PG' || true)

readonly SCRIPT_NAME=pg-server
# shellcheck source=scripts/lib/throwaway-server.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib/throwaway-server.sh"

# Run a command as the postgres OS user, bounded in time.
as_pg() {
  local secs=$1; shift
  timeout --kill-after=5 "$secs" runuser -u "$OS_USER" -- "$@"
}

find_bindir() {
  # pg_config --bindir names the *client* bin dir; the server binaries live
  # under /usr/lib/postgresql/<major>/bin. Pick the highest major present.
  local d best=""
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x $d/postgres && -x $d/initdb && -x $d/pg_ctl ]] || continue
    if [[ -z $best ]] || [[ $(printf '%s\n%s\n' "$best" "$d" | sort -V | tail -n1) == "$d" ]]; then
      best=$d
    fi
  done
  [[ -n $best ]] || die "no PostgreSQL server found under /usr/lib/postgresql/*/bin (run scripts/install-deps.sh)"
  echo "$best"
}

# True if the pid in PIDFILE is a live (not zombie) postgres process.
pid_alive() {
  local pidfile=$1
  [[ -r $pidfile ]] || return 1
  pid_is_live "$(head -n1 -- "$pidfile" 2>/dev/null || true)" postgres
}

# Stop the cluster in DIR if one runs; bounded, escalates to SIGKILL.
stop_cluster() {
  local dir=$1 bindir=$2 pidfile=$1/data/postmaster.pid pid
  pid_alive "$pidfile" || return 0
  pid=$(head -n1 -- "$pidfile")
  # Immediate mode: the data is thrown away anyway, no checkpoint needed.
  if ! as_pg 40 "$bindir/pg_ctl" -D "$dir/data" stop -m immediate -w -t 30 >/dev/null 2>&1; then
    echo "pg-server: pg_ctl stop failed, sending SIGKILL to postmaster $pid" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # Backends exit once the postmaster is gone; wait briefly for it.
  local i
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pidfile" || return 0
    sleep 0.1
  done
  die "postmaster $pid in $dir did not exit"
}

psql_super() {
  # Superuser over the private unix socket (trust); stops on the first error.
  local dir=$1 bindir=$2 port=$3; shift 3
  PGCONNECT_TIMEOUT=10 timeout 30 "$bindir/psql" -X -q -v ON_ERROR_STOP=1 \
    -h "$dir/sock" -p "$port" -U postgres -d postgres "$@"
}

cmd_start() {
  local dir=$1 bindir port log attempt started=0 lines
  bindir=$(find_bindir)
  check_ours "$dir"
  check_traversable "$dir"
  # sun_path holds 107 bytes; the socket is DIR/sock/.s.PGSQL.<port>.
  ((${#dir} + 20 <= 107)) || die "DIR '$dir' is too long for a unix socket path (max ~87 characters)"

  # A previous run may still be serving from DIR: stop it, then start fresh.
  if [[ -d $dir ]]; then
    stop_cluster "$dir" "$bindir"
    find "$dir" -mindepth 1 -delete
  fi
  mkdir -p -- "$dir/sock"
  touch -- "$dir/$MARKER"
  chown -R "$OS_USER:" -- "$dir"
  runuser -u "$OS_USER" -- test -w "$dir" || die "user '$OS_USER' cannot write to $dir"

  # --no-locale: do not depend on which locales the image generated.
  as_pg 120 "$bindir/initdb" -D "$dir/data" --auth=trust --no-sync -U postgres \
    --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
    || { tail -n 30 -- "$dir/initdb.log" >&2; die "initdb failed"; }

  # Password user only over TCP with SCRAM; everything else is trusted so
  # tests can connect as postgres without secrets.
  cat >"$dir/data/pg_hba.conf" <<'EOF'
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       app   127.0.0.1/32   scram-sha-256
host    all       all   127.0.0.1/32   trust
host    all       app   ::1/128        scram-sha-256
host    all       all   ::1/128        trust
EOF
  chown "$OS_USER:" -- "$dir/data/pg_hba.conf"

  max_connections=${CONNLEAK_PG_MAX_CONNECTIONS:-300}
  [[ $max_connections =~ ^[0-9]+$ ]] || die "CONNLEAK_PG_MAX_CONNECTIONS='$max_connections' is not a number"
  log=$dir/server.log
  for ((attempt = 1; attempt <= PORT_ATTEMPTS; attempt++)); do
    port=$(free_port)
    lines=$(wc -l 2>/dev/null <"$log" || echo 0)
    # max_connections=300: tests run 16-thread storms and pgbench
    # (CONNLEAK_PG_MAX_CONNECTIONS overrides it: the server-refusal test wants
    # a cluster that says "too many clients" after a few). Also on ::1
    # for the IPv6 socket test (PostgreSQL only warns where it cannot bind it).
    if as_pg $((START_TIMEOUT + 10)) "$bindir/pg_ctl" -D "$dir/data" -l "$log" \
      -w -t "$START_TIMEOUT" start -o "-c listen_addresses=127.0.0.1,::1 -c port=$port \
-c unix_socket_directories=$dir/sock -c fsync=off -c max_connections=$max_connections \
-c password_encryption=scram-sha-256" >/dev/null 2>&1; then
      started=1
      break
    fi
    # Port grabbed between choosing and binding: pick another one.
    if tail -n +"$((lines + 1))" -- "$log" 2>/dev/null | grep -q 'could not bind\|already in use'; then
      stop_cluster "$dir" "$bindir"
      continue
    fi
    break
  done
  if ((started == 0)); then
    echo "pg-server: server failed to start (timeout ${START_TIMEOUT}s); last 30 lines of $log:" >&2
    tail -n 30 -- "$log" >&2 || true
    stop_cluster "$dir" "$bindir" || true
    exit 1
  fi

  # Role and database for the password tests. The password is sent in the
  # SQL here only; the server stores a SCRAM verifier.
  psql_super "$dir" "$bindir" "$port" <<EOF
SET password_encryption = 'scram-sha-256';
CREATE ROLE $APP_USER LOGIN PASSWORD '$APP_PASSWORD';
CREATE DATABASE $APP_DB OWNER $APP_USER;
EOF

  # Written atomically and last: its presence means "ready".
  cat >"$dir/env.tmp" <<EOF
CONNLEAK_TEST_PG_HOST='127.0.0.1'
CONNLEAK_TEST_PG_PORT='$port'
CONNLEAK_TEST_PG_SOCKET_DIR='$dir/sock'
CONNLEAK_TEST_PG_CONNINFO='host=127.0.0.1 port=$port dbname=postgres user=postgres'
CONNLEAK_TEST_PG_APP_USER='$APP_USER'
CONNLEAK_TEST_PG_APP_PASSWORD='$APP_PASSWORD'
CONNLEAK_TEST_PG_APP_DB='$APP_DB'
CONNLEAK_TEST_PG_BINDIR='$bindir'
EOF
  mv -- "$dir/env.tmp" "$dir/env"
  echo "pg-server: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, env in $dir/env"
}

cmd_stop() {
  local dir=$1 bindir
  [[ -d $dir ]] || exit 0
  check_ours "$dir"
  bindir=$(find_bindir)
  stop_cluster "$dir" "$bindir"
  rm -rf -- "$dir"
}

[[ $# -eq 2 ]] || usage
# Resolve a relative DIR against the caller's cwd before leaving it.
DIR=$(normalize_dir "$2")
cd /  # the postgres user may not be able to read the caller's cwd
[[ $(id -u) -eq 0 ]] || die "must run as root (it switches to the '$OS_USER' user)"
case $1 in
  start) cmd_start "$DIR" ;;
  stop) cmd_stop "$DIR" ;;
  *) usage ;;
esac
