#!/usr/bin/env bash
# Throwaway MariaDB server for connleak's tests and demo.
#
#   scripts/mariadb-server.sh start DIR   # (re)create a fresh server in DIR
#   scripts/mariadb-server.sh stop DIR    # stop it and remove DIR
#
# After a successful start, DIR/env holds sourceable KEY='VALUE' lines
# (no "export"; use `set -a; . DIR/env; set +a`):
#   CONNLEAK_TEST_MYSQL_HOST      127.0.0.1
#   CONNLEAK_TEST_MYSQL_PORT      TCP port chosen for this server
#   CONNLEAK_TEST_MYSQL_SOCKET    DIR/mysqld.sock
#   CONNLEAK_TEST_MYSQL_USER      app (password user; PROCESS + CONNECTION
#                                 ADMIN + SUPER so tests can KILL sessions
#                                 and read SHOW PROCESSLIST)
#   CONNLEAK_TEST_MYSQL_PASSWORD  its password
#   CONNLEAK_TEST_MYSQL_DB        connleak
# root has no password, over the socket and over TCP 127.0.0.1.
# DIR/env is written last, so its existence means the server is ready.
#
# Layout of DIR: data/, mysqld.sock, mysqld.pid, launch.pid, error.log, env,
# .connleak-mariadb-server (marker: this script only wipes or deletes
# directories carrying it, or empty ones).
#
# mariadbd starts as root and drops to the `mysql` OS user (--user=mysql).
# Several servers may run at once in different DIRs: each gets its own port.
# Every wait is bounded and nothing reads stdin.
set -euo pipefail

readonly MARKER=.connleak-mariadb-server
readonly APP_USER=app
readonly APP_PASSWORD=Sup3r-s3cret-pw
readonly APP_DB=connleak
readonly OS_USER=mysql
readonly START_TIMEOUT=60  # seconds to wait for "mysqld is alive"
readonly PORT_ATTEMPTS=5   # retries if the chosen port is taken meanwhile

exec </dev/null            # never wait on stdin (CI, cron, ssh -n ...)
umask 022                  # parents we create must stay traversable
# mariadbd / mariadb-install-db live in /usr/sbin, absent from some PATHs.
export PATH=$PATH:/usr/sbin:/sbin
# Ambient client settings would redirect our own client calls.
unset MYSQL_HOST MYSQL_TCP_PORT MYSQL_UNIX_PORT MYSQL_PWD

readonly SCRIPT_NAME=mariadb-server
# shellcheck source=scripts/lib/throwaway-server.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib/throwaway-server.sh"

pid_alive() { pid_is_live "$1" mariadbd; }

# True while PID exists and is not a zombie, whatever its name (during
# startup it is briefly setsid/nohup before exec'ing mariadbd).
running() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)
  [[ -n $state && $state != Z ]]
}

read_pid() { head -n1 -- "$1" 2>/dev/null || true; }

# Admin client as root over the private socket; bounded.
client() {
  local dir=$1; shift
  timeout --kill-after=5 30 mariadb --no-defaults --protocol=socket \
    --socket="$dir/mysqld.sock" -uroot --connect-timeout=10 "$@"
}

any_alive() {
  local pid
  for pid in "$@"; do
    pid_alive "$pid" && return 0
  done
  return 1
}

# Stop the server in DIR if one runs: clean shutdown, then SIGKILL. Bounded.
stop_server() {
  local dir=$1 pid pids=() i
  for pid in "$(read_pid "$dir/mysqld.pid")" "$(read_pid "$dir/launch.pid")"; do
    pid_alive "$pid" && pids+=("$pid")
  done
  ((${#pids[@]} > 0)) || return 0
  if [[ -S $dir/mysqld.sock ]]; then
    timeout --kill-after=5 30 mariadb-admin --no-defaults --protocol=socket \
      --socket="$dir/mysqld.sock" -uroot --connect-timeout=5 shutdown >/dev/null 2>&1 || true
  fi
  # Up to 5 s for the clean shutdown, then SIGKILL and up to 5 s more.
  for ((i = 0; i < 100; i++)); do
    any_alive "${pids[@]}" || return 0
    if ((i == 50)); then
      echo "mariadb-server: clean shutdown too slow, sending SIGKILL to ${pids[*]}" >&2
      kill -KILL "${pids[@]}" 2>/dev/null || true
    fi
    sleep 0.1
  done
  die "mariadbd in $dir did not exit"
}

cmd_start() {
  local dir=$1 port attempt started=0 lines pid log deadline
  if ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null; then
    die "mariadbd / mariadb-install-db not found (run scripts/install-deps.sh)"
  fi
  check_ours "$dir"
  check_traversable "$dir"
  # sun_path holds 107 bytes; the socket is DIR/mysqld.sock.
  ((${#dir} + 12 <= 107)) || die "DIR '$dir' is too long for a unix socket path (max ~95 characters)"

  # A previous run may still be serving from DIR: stop it, then start fresh.
  if [[ -d $dir ]]; then
    stop_server "$dir"
    find "$dir" -mindepth 1 -delete
  fi
  mkdir -p -- "$dir"
  touch -- "$dir/$MARKER"
  chown "$OS_USER:" -- "$dir"
  runuser -u "$OS_USER" -- test -w "$dir" || die "user '$OS_USER' cannot write to $dir"

  # --no-defaults everywhere: /etc/mysql/*.cnf points pid-file/socket at
  # /run/mysqld and would make two instances collide.
  # --auth-root-authentication-method=normal: root without password (not
  # unix_socket auth), so tests can also connect as root over TCP.
  timeout --kill-after=5 120 mariadb-install-db --no-defaults --user="$OS_USER" \
    --datadir="$dir/data" --auth-root-authentication-method=normal --skip-test-db \
    >"$dir/install-db.log" 2>&1 \
    || { tail -n 30 -- "$dir/install-db.log" >&2; die "mariadb-install-db failed"; }

  log=$dir/error.log
  for ((attempt = 1; attempt <= PORT_ATTEMPTS; attempt++)); do
    port=$(free_port)
    lines=$(wc -l 2>/dev/null <"$log" || echo 0)
    # setsid + nohup + redirections: the server must outlive this script and
    # must not hold the caller's stdout/stderr open (e.g. `$(...)` or a pipe).
    # Without job control, "&" does not make a process-group leader, so
    # setsid execs in place and $! is mariadbd's own pid.
    # utf8mb4: the Debian config sets it, but --no-defaults skips that file.
    setsid nohup mariadbd --no-defaults --user="$OS_USER" --datadir="$dir/data" \
      --socket="$dir/mysqld.sock" --port="$port" --bind-address=127.0.0.1 \
      --pid-file="$dir/mysqld.pid" --skip-grant-tables=0 \
      --innodb-buffer-pool-size=64M --max-connections=300 \
      --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
      --log-error="$log" </dev/null >/dev/null 2>&1 &
    pid=$!
    echo "$pid" >"$dir/launch.pid"
    deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
      if timeout 5 mariadb-admin --no-defaults --protocol=socket --socket="$dir/mysqld.sock" \
        -uroot --connect-timeout=2 ping >/dev/null 2>&1; then
        started=1
        break 2
      fi
      running "$pid" || break  # died early (bad option, port taken...)
      sleep 0.2
    done
    # Port grabbed between choosing and binding: pick another one.
    if tail -n +"$((lines + 1))" -- "$log" 2>/dev/null | grep -q 'Address already in use\|Bind on TCP/IP port'; then
      stop_server "$dir"
      continue
    fi
    break
  done
  if ((started == 0)); then
    echo "mariadb-server: server failed to start (timeout ${START_TIMEOUT}s); last 30 lines of $log:" >&2
    tail -n 30 -- "$log" >&2 || true
    stop_server "$dir" || true
    exit 1
  fi

  # Database, root over TCP, and the password user for all three host forms
  # (TCP from 127.0.0.1 resolves to 'localhost'; '%' covers anything else).
  client "$dir" <<EOF
DROP USER IF EXISTS ''@'localhost';
CREATE DATABASE IF NOT EXISTS $APP_DB CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER '$APP_USER'@'127.0.0.1' IDENTIFIED BY '$APP_PASSWORD';
CREATE USER '$APP_USER'@'localhost' IDENTIFIED BY '$APP_PASSWORD';
CREATE USER '$APP_USER'@'%' IDENTIFIED BY '$APP_PASSWORD';
GRANT ALL PRIVILEGES ON $APP_DB.* TO '$APP_USER'@'127.0.0.1', '$APP_USER'@'localhost', '$APP_USER'@'%';
EOF
  # KILL of other users' sessions needs CONNECTION ADMIN (MariaDB >= 10.5.2);
  # older servers only know SUPER.
  local grantee="'$APP_USER'@'127.0.0.1', '$APP_USER'@'localhost', '$APP_USER'@'%'"
  if ! client "$dir" -e "GRANT PROCESS, CONNECTION ADMIN, SUPER ON *.* TO $grantee" 2>/dev/null; then
    client "$dir" -e "GRANT PROCESS, SUPER ON *.* TO $grantee"
  fi

  # Written atomically and last: its presence means "ready".
  cat >"$dir/env.tmp" <<EOF
CONNLEAK_TEST_MYSQL_HOST='127.0.0.1'
CONNLEAK_TEST_MYSQL_PORT='$port'
CONNLEAK_TEST_MYSQL_SOCKET='$dir/mysqld.sock'
CONNLEAK_TEST_MYSQL_USER='$APP_USER'
CONNLEAK_TEST_MYSQL_PASSWORD='$APP_PASSWORD'
CONNLEAK_TEST_MYSQL_DB='$APP_DB'
EOF
  mv -- "$dir/env.tmp" "$dir/env"
  echo "mariadb-server: $(client "$dir" -N -e 'SELECT VERSION()') on 127.0.0.1:$port, env in $dir/env"
}

cmd_stop() {
  local dir=$1
  [[ -d $dir ]] || exit 0
  check_ours "$dir"
  stop_server "$dir"
  rm -rf -- "$dir"
}

[[ $# -eq 2 ]] || usage
# Resolve a relative DIR against the caller's cwd before leaving it.
DIR=$(normalize_dir "$2")
cd /  # the mysql user may not be able to read the caller's cwd
[[ $(id -u) -eq 0 ]] || die "must run as root (mariadbd drops to the '$OS_USER' user)"
case $1 in
  start) cmd_start "$DIR" ;;
  stop) cmd_stop "$DIR" ;;
  *) usage ;;
esac
