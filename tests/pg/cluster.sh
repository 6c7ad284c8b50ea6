#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests and the benchmark.
#   cluster.sh start DIR      initdb into DIR/data (as an unprivileged user when run as
#                             root), start it on a Unix socket in DIR/sock and on a free
#                             port of 127.0.0.1; prints the port (also in DIR/port).
#                             Database "tlsrpt", owned by role "tlsrpt" (password
#                             "tlsrpt-secret"); socket connections are trusted, TCP
#                             ones need the password (scram-sha-256).
#   cluster.sh stop DIR [MODE] pg_ctl stop (MODE fast, or immediate: a crash)
#   cluster.sh restart DIR    start it again after a stop, on the same port
#   cluster.sh psql DIR ARGS  psql on the socket as the superuser, database tlsrpt
#   cluster.sh conninfo DIR   the connection string of the socket, as role tlsrpt
# Needs Debian's postgresql package (tests/setup-debian.sh --test).
set -euo pipefail
cmd=${1:?usage: cluster.sh start|stop|restart|psql|conninfo DIR}
dir=${2:?missing DIR}

bindir=${TLSRPT_PG_BINDIR:-}
if [ -z "$bindir" ]; then
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bindir=$d; done
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "cluster.sh: PostgreSQL is not installed (Debian: apt-get install postgresql)" >&2
  exit 2
fi

# The cluster's owner: postgres refuses to run as root.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$owner" -- "$@"
  else
    "$@"
  fi
}
owner=$(id -un)
if [ "$(id -u)" = 0 ]; then
  owner=postgres
  id "$owner" >/dev/null 2>&1 || owner=nobody
fi

pgctl() {
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 "$@"
}

start_on() {
  pgctl -o "-c port=$1 -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir/sock" \
    start >/dev/null
}

case "$cmd" in
start)
  dir=$(cd "$dir" && pwd)
  mkdir -p "$dir/sock"
  if [ "$(id -u)" = 0 ]; then
    chmod 755 "$dir"
    chown "$owner" "$dir" "$dir/sock"
  fi
  printf '%s\n' admin-secret >"$dir/pwfile"
  [ "$(id -u)" = 0 ] && chown "$owner" "$dir/pwfile"
  as_owner "$bindir/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
    -E UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  cat >>"$dir/data/postgresql.conf" <<CONF
max_connections = 200
fsync = ${TLSRPT_PG_FSYNC:-on}
log_min_messages = warning
CONF
  # A free port: try a few, the server says when one is taken.
  port=
  for _ in $(seq 1 20); do
    p=$((20000 + RANDOM % 40000))
    if start_on "$p" 2>/dev/null; then port=$p; break; fi
  done
  if [ -z "$port" ]; then
    echo "cluster.sh: the server does not start:" >&2
    tail -n 20 "$dir/server.log" >&2
    exit 1
  fi
  echo "$port" >"$dir/port"
  as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$port" -U postgres \
    -d postgres >/dev/null <<SQL
CREATE ROLE tlsrpt LOGIN PASSWORD 'tlsrpt-secret';
CREATE DATABASE tlsrpt OWNER tlsrpt;
SQL
  echo "$port"
  ;;
restart)
  start_on "$(cat "$dir/port")"
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then
    pgctl -m "${3:-fast}" stop >/dev/null 2>&1 || true
  fi
  ;;
psql)
  shift 2
  as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$(cat "$dir/port")" \
    -U postgres -d tlsrpt "$@"
  ;;
conninfo)
  echo "host=$dir/sock port=$(cat "$dir/port") dbname=tlsrpt user=tlsrpt"
  ;;
*)
  echo "cluster.sh: unknown command $cmd" >&2
  exit 2
  ;;
esac
