#!/usr/bin/env bash
# A throw-away Dovecot on 127.0.0.1 for the IMAP tests.
#   dovecot.sh start DIR PORT_IMAP PORT_IMAPS   config, self-signed cert, user "test"
#                                               (password "secret", uid 8), start
#   dovecot.sh stop DIR                         kill the master (from its pid file)
# DOVECOT_LISTEN: the addresses to listen on (default 127.0.0.1; e.g. "127.0.0.1,
# 10.231.0.1" for the benchmark's delayed path), all in the certificate's names.
# Needs root, Debian's dovecot-core and openssl, and the IMAP processes of dovecot-imapd:
# installed (/usr/lib/dovecot/imap), or unpacked into $TLSRPT_DOVECOT_IMAPD (default
# /usr/local/lib/tlsrpt-test/dovecot-imapd) by tests/setup-debian.sh --test, because
# dovecot-imapd and courier-imap (the suite's second server) conflict as packages.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?usage: dovecot.sh start DIR PORT_IMAP PORT_IMAPS | stop DIR}
dir=${2:?missing DIR}

case "$cmd" in
start)
  port_imap=${3:?missing PORT_IMAP}
  port_imaps=${4:?missing PORT_IMAPS}
  dovecot=$(command -v dovecot || echo /usr/sbin/dovecot)
  if [ ! -x "$dovecot" ]; then
    echo "dovecot.sh: dovecot is not installed (Debian: apt-get install dovecot-imapd openssl)" >&2
    exit 2
  fi
  imapd=/usr/lib/dovecot
  if [ ! -x "$imapd/imap" ]; then
    imapd=${TLSRPT_DOVECOT_IMAPD:-/usr/local/lib/tlsrpt-test/dovecot-imapd}/usr/lib/dovecot
    if [ ! -x "$imapd/imap" ]; then
      echo "dovecot.sh: Dovecot's imap processes are missing (tests/setup-debian.sh --test)" >&2
      exit 2
    fi
  fi
  # Dovecot's auth and mail processes run unprivileged: they must reach into DIR.
  chmod 755 "$dir"
  mkdir -p "$dir/run" "$dir/state" "$dir/home/Maildir/new" "$dir/home/Maildir/cur" \
           "$dir/home/Maildir/tmp"
  listen=${DOVECOT_LISTEN:-127.0.0.1}
  san=DNS:localhost
  for ip in ${listen//,/ }; do san=$san,IP:$ip; done
  if [ ! -s "$dir/cert.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 2 \
      -addext "subjectAltName=$san" \
      -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
  fi
  printf 'test:{PLAIN}secret:8:8::%s/home\n' "$dir" >"$dir/passwd"
  chown -R 8:8 "$dir/home"
  sed -e "s|@DIR@|$dir|g" -e "s|@PORT_IMAP@|$port_imap|g" -e "s|@PORT_IMAPS@|$port_imaps|g" \
    -e "s|@IMAPD@|$imapd|g" -e "s|@LISTEN@|$listen|g" \
    "$here/dovecot.conf.in" >"$dir/dovecot.conf"
  # The master daemonizes: it must not keep the caller's stdout/stderr open.
  if ! "$dovecot" -c "$dir/dovecot.conf" </dev/null >"$dir/start.log" 2>&1; then
    cat "$dir/start.log" >&2
    exit 1
  fi
  ;;
stop)
  # Wait until the master is gone: a restart in the same directory would otherwise
  # find its pid file and refuse to start ("Dovecot is already running"). A zombie
  # counts as gone: in a container nobody may reap the daemon.
  running() {
    kill -0 "$1" 2>/dev/null && ! awk '{ exit !($3 == "Z") }' "/proc/$1/stat" 2>/dev/null
  }
  if [ -s "$dir/run/master.pid" ]; then
    pid=$(cat "$dir/run/master.pid")
    kill "$pid" 2>/dev/null || true
    i=0
    while running "$pid" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    if running "$pid"; then
      kill -9 "$pid" 2>/dev/null || true
      i=0
      while running "$pid" && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
    fi
    rm -f "$dir/run/master.pid"
  fi
  ;;
*)
  echo "dovecot.sh: unknown command $cmd" >&2
  exit 2
  ;;
esac
