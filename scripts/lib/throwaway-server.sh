# Shared by scripts/pg-server.sh and scripts/mariadb-server.sh: the parts of a
# throwaway server's life that do not depend on the database. Source it after
# setting SCRIPT_NAME (for messages), MARKER and OS_USER.

die() { echo "$SCRIPT_NAME: $*" >&2; exit 1; }

usage() { die "usage: $0 start|stop DIR"; }

free_port() {
  # Let the kernel pick an unused port; a race with another process is
  # handled by retrying the start on "address already in use".
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Validate DIR and make it absolute. Quotes, spaces and shell metacharacters
# are rejected because DIR ends up in the single-quoted env file (and, for
# PostgreSQL, inside pg_ctl -o and postgresql.conf).
normalize_dir() {
  local dir=$1
  [[ -n $dir ]] || usage
  [[ $dir =~ ^[A-Za-z0-9/._+@,=-]+$ ]] || die "DIR '$dir' contains unsupported characters (allowed: A-Z a-z 0-9 / . _ + @ , = -)"
  dir=$(realpath -m -- "$dir")
  [[ $dir != / ]] || die "refusing to use / as DIR"
  echo "$dir"
}

# Refuse to wipe a non-empty directory this script did not create.
check_ours() {
  local dir=$1
  [[ -d $dir ]] || return 0
  [[ -e $dir/$MARKER ]] && return 0
  [[ -z $(ls -A -- "$dir") ]] && return 0
  die "$dir is not empty and was not created by $SCRIPT_NAME.sh; refusing to wipe it"
}

# The server's OS user must be able to traverse every existing ancestor of
# DIR, otherwise the server fails with EACCES (e.g. DIR under /root).
check_traversable() {
  local dir=$1 p
  p=$(dirname -- "$dir")
  while :; do
    if [[ -e $p ]] && ! runuser -u "$OS_USER" -- test -x "$p"; then
      die "user '$OS_USER' cannot traverse $p (mode $(stat -c %A -- "$p")); choose a DIR outside it, e.g. under /tmp"
    fi
    [[ $p == / ]] && break
    p=$(dirname -- "$p")
  done
}

# True if PID is a live (not zombie) process named COMM. The name check guards
# against a stale pid file whose pid got reused; the zombie check matters
# because PID 1 on some containers reaps orphans only after a delay.
pid_is_live() {
  local pid=$1 comm=$2 state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [[ -n $state && $state != Z ]]
}
