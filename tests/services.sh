#!/usr/bin/env bash
# Private PostgreSQL and Redis servers on loopback for the tests.
#
#   source tests/services.sh          # starts both, exports the URLs below and
#                                     # sets an EXIT trap that stops them
#   tests/services.sh CMD [ARGS...]   # runs CMD with both up, then stops them
#
# Exports SWITCHYARD_TEST_POSTGRES_URL (superuser `postgres`, trust auth, the
# tests create a database each) and SWITCHYARD_TEST_REDIS_URL. A variable that
# is already set is kept and its server is not started (use your own).
#
# Installs the Debian packages `postgresql` and `redis-server` when their
# binaries are missing (root, or passwordless sudo). Each server gets a free
# port on 127.0.0.1 and its own directory under target/services/ (data,
# sockets, pid file, log); both are stopped by PID and their directories
# removed when the shell that sourced this exits, on failure too. A server
# that does not answer within 30 s fails the run and its log is printed.
set -euo pipefail

_sy_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_sy_state="$_sy_root/target/services"
_sy_pg_pid=""
_sy_pg_dir=""
_sy_pg_sock=""
_sy_redis_pid=""
_sy_redis_dir=""

_sy_log() { echo "services: $*" >&2; }

_sy_as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    _sy_log "need root (or passwordless sudo) to run: $*"
    return 1
  fi
}

_sy_pg_bin() {
  # Debian's own binaries (postgresql-common's wrappers pick clusters under
  # /etc/postgresql, which we do not use); the newest major version wins.
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && [ -x "$d/pg_ctl" ]; then
    echo "$d"
  fi
}

_sy_install() {
  local need=()
  [ -n "$(_sy_pg_bin)" ] || need+=(postgresql)
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || need+=(redis-server)
  [ ${#need[@]} -gt 0 ] || return 0
  _sy_log "installing ${need[*]}"
  # Waits for another apt-get holding the lock instead of failing at once.
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
  local install=("${apt[@]}" install -y --no-install-recommends "${need[@]}")
  if ! _sy_as_root "${install[@]}" >"$_sy_state/apt.log" 2>&1; then
    # A fresh machine may have no package lists yet.
    _sy_as_root "${apt[@]}" update >>"$_sy_state/apt.log" 2>&1 &&
      _sy_as_root "${install[@]}" >>"$_sy_state/apt.log" 2>&1 ||
      { cat "$_sy_state/apt.log" >&2; _sy_log "apt-get install ${need[*]} failed"; return 1; }
  fi
}

# A port on 127.0.0.1 that nothing listens on, below the kernel's ephemeral
# range so outgoing connections do not take it first. The server's own bind
# is the real check: callers retry on another port when it fails.
_sy_free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
}

# Runs a command as the owner of the PostgreSQL data (initdb refuses root).
_sy_pg_user=""
_sy_as_pg() {
  # From the data's directory: the checkout may be unreadable to that user.
  if [ -n "$_sy_pg_user" ]; then
    (cd "$_sy_pg_dir" && runuser -u "$_sy_pg_user" -- "$@")
  else
    "$@"
  fi
}

_sy_start_postgres() {
  local bin port attempt
  bin="$(_sy_pg_bin)"
  [ -n "$bin" ] || { _sy_log "no PostgreSQL under /usr/lib/postgresql/*/bin"; return 1; }
  mkdir -p "$_sy_state/pg"
  _sy_pg_dir="$(mktemp -d "$_sy_state/pg/run.XXXXXX")"
  if [ "$(id -u)" = 0 ]; then
    _sy_pg_user=postgres
    chown postgres: "$_sy_pg_dir"
    if ! runuser -u postgres -- test -w "$_sy_pg_dir"; then
      # The checkout is somewhere the postgres user cannot reach (/root).
      rm -rf "$_sy_pg_dir"
      _sy_pg_dir="$(mktemp -d /tmp/switchyard-pg.XXXXXX)"
      chown postgres: "$_sy_pg_dir"
    fi
  fi
  # A Unix socket path is limited to 107 bytes: a deep checkout puts the
  # socket in a short directory of its own instead.
  _sy_pg_sock="$_sy_pg_dir"
  if [ ${#_sy_pg_sock} -gt 80 ]; then
    _sy_pg_sock="$(mktemp -d /tmp/sy-pg-sock.XXXXXX)"
    [ -z "$_sy_pg_user" ] || chown "$_sy_pg_user": "$_sy_pg_sock"
  fi
  _sy_as_pg "$bin/initdb" -D "$_sy_pg_dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$_sy_pg_dir/initdb.log" 2>&1 || { cat "$_sy_pg_dir/initdb.log" >&2; return 1; }
  for attempt in 1 2 3; do
    port="$(_sy_free_port)"
    # Durability is not under test: fsync off makes every CREATE DATABASE
    # and commit much cheaper. Each store test makes its own database with a
    # pool of up to 8, several at once.
    if _sy_as_pg "$bin/pg_ctl" -D "$_sy_pg_dir/data" -l "$_sy_pg_dir/postgres.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$_sy_pg_sock \
          -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >"$_sy_pg_dir/pg_ctl.log" 2>&1; then
      _sy_pg_pid="$(head -n 1 "$_sy_pg_dir/data/postmaster.pid")"
      break
    fi
    # pg_ctl may give up while the server still starts: stop it if it did.
    if [ -f "$_sy_pg_dir/data/postmaster.pid" ]; then
      _sy_pg_pid="$(head -n 1 "$_sy_pg_dir/data/postmaster.pid")"
      _sy_stop_postgres_process
    fi
    _sy_log "postgres did not start on port $port (attempt $attempt)"
  done
  [ -n "$_sy_pg_pid" ] || { cat "$_sy_pg_dir/pg_ctl.log" "$_sy_pg_dir/postgres.log" >&2 || true; return 1; }
  local deadline=$((SECONDS + 30))
  until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; do
    if [ $SECONDS -ge $deadline ]; then
      cat "$_sy_pg_dir/postgres.log" >&2 || true
      _sy_log "postgres on port $port did not answer within 30 s"
      return 1
    fi
    sleep 0.2
  done
  export SWITCHYARD_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  _sy_log "postgres $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (pid $_sy_pg_pid)"
}

_sy_start_redis() {
  local port attempt deadline
  mkdir -p "$_sy_state/redis"
  _sy_redis_dir="$(mktemp -d "$_sy_state/redis/run.XXXXXX")"
  local pidfile="$_sy_redis_dir/redis.pid" log="$_sy_redis_dir/redis.log"
  for attempt in 1 2 3; do
    port="$(_sy_free_port)"
    rm -f "$pidfile" "$log"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --pidfile "$pidfile" --dir "$_sy_redis_dir" --logfile "$log" >"$_sy_redis_dir/start.log" 2>&1 ||
      { cat "$_sy_redis_dir/start.log" >&2; return 1; }
    deadline=$((SECONDS + 30))
    while :; do
      if [ -s "$pidfile" ] && [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then
        _sy_redis_pid="$(cat "$pidfile")"
        export SWITCHYARD_TEST_REDIS_URL="redis://127.0.0.1:$port/"
        _sy_log "$(redis-server --version | awk '{print $1, $3}') on 127.0.0.1:$port (pid $_sy_redis_pid)"
        return 0
      fi
      # A failed bind ends the daemon: try another port.
      grep -q "Could not create server TCP listening socket" "$log" 2>/dev/null && break
      if [ $SECONDS -ge $deadline ]; then
        cat "$log" >&2 || true
        _sy_log "redis on port $port did not answer within 30 s"
        [ ! -s "$pidfile" ] || { _sy_redis_pid="$(cat "$pidfile")"; _sy_stop_redis; }
        return 1
      fi
      sleep 0.1
    done
    _sy_log "redis could not listen on port $port (attempt $attempt)"
  done
  cat "$log" >&2 || true
  return 1
}

# Whether a PID still runs. Both servers are daemons whose parent is init,
# which may take its time to reap them: a zombie has stopped.
_sy_alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state="$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null || true)"
  [ "$state" != Z ]
}

# Waits (bounded) for a PID to exit, then kills it hard.
_sy_reap() {
  local pid="$1" i
  for i in $(seq 1 100); do
    _sy_alive "$pid" || return 0
    sleep 0.1
  done
  _sy_log "pid $pid did not stop within 10 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

_sy_stop_postgres_process() {
  if [ -n "$_sy_pg_pid" ] && _sy_alive "$_sy_pg_pid"; then
    # SIGINT: PostgreSQL's fast shutdown (ends sessions, no waiting for clients).
    kill -INT "$_sy_pg_pid" 2>/dev/null || true
    _sy_reap "$_sy_pg_pid"
  fi
  _sy_pg_pid=""
}

_sy_stop_redis() {
  if [ -n "$_sy_redis_pid" ] && _sy_alive "$_sy_redis_pid"; then
    kill -TERM "$_sy_redis_pid" 2>/dev/null || true
    _sy_reap "$_sy_redis_pid"
  fi
  _sy_redis_pid=""
}

_sy_stop_services() {
  _sy_stop_postgres_process
  _sy_stop_redis
  [ -z "$_sy_pg_dir" ] || rm -rf "$_sy_pg_dir"
  [ -z "$_sy_pg_sock" ] || rm -rf "$_sy_pg_sock"
  [ -z "$_sy_redis_dir" ] || rm -rf "$_sy_redis_dir"
  _sy_pg_dir=""
  _sy_pg_sock=""
  _sy_redis_dir=""
}

# The EXIT trap also covers Ctrl-C and kill: those first end the shell
# through `exit`, which runs it.
trap '_sy_stop_services' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

_sy_started=$SECONDS
mkdir -p "$_sy_state"
need_pg=true
need_redis=true
[ -z "${SWITCHYARD_TEST_POSTGRES_URL:-}" ] || need_pg=false
[ -z "${SWITCHYARD_TEST_REDIS_URL:-}" ] || need_redis=false
if $need_pg || $need_redis; then
  _sy_install
fi
if $need_pg; then _sy_start_postgres; else _sy_log "using SWITCHYARD_TEST_POSTGRES_URL from the environment"; fi
if $need_redis; then _sy_start_redis; else _sy_log "using SWITCHYARD_TEST_REDIS_URL from the environment"; fi
unset need_pg need_redis
_sy_log "ready in $((SECONDS - _sy_started)) s"

if [ "${BASH_SOURCE[0]}" = "$0" ] && [ $# -gt 0 ]; then
  "$@"
fi
