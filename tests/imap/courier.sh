#!/usr/bin/env bash
# A throw-away Courier-IMAP on 127.0.0.1 for the IMAP tests: the suite's second real
# server, with Courier's own folder layout (the personal namespace "INBOX." with "."
# as delimiter) and no MOVE capability.
#   courier.sh start DIR PORT_IMAPS   self-signed cert, Maildir DIR/home/Maildir, start
#   courier.sh stop DIR               kill couriertcpd (from its pid file)
# couriertcpd accepts on PORT_IMAPS, couriertls does the TLS and Courier's imapd runs
# preauthenticated in DIR/home/Maildir, as it does over ssh: its LOGIN would go through
# the system-wide authdaemond socket, which a test must not reconfigure. Needs root and
# the Debian packages courier-imap (couriertcpd, couriertls, imapd) and openssl.
set -euo pipefail
cmd=${1:?usage: courier.sh start DIR PORT_IMAPS | stop DIR}
dir=${2:?missing DIR}

case "$cmd" in
start)
  port=${3:?missing PORT_IMAPS}
  for p in couriertcpd couriertls /usr/bin/imapd; do
    if ! command -v "$p" >/dev/null; then
      echo "courier.sh: $p is missing (Debian: apt-get install courier-imap openssl)" >&2
      exit 2
    fi
  done
  mkdir -p "$dir/home/Maildir/new" "$dir/home/Maildir/cur" "$dir/home/Maildir/tmp"
  if [ ! -s "$dir/cert.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 2 \
      -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
      -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
    cat "$dir/key.pem" "$dir/cert.pem" >"$dir/imapd.pem"
    chmod 600 "$dir/imapd.pem"
  fi
  # Courier's default capabilities (/etc/courier/imapd): no MOVE. couriertcpd wants
  # the program's full path.
  cd "$dir/home"
  env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin TLS_CERTFILE="$dir/imapd.pem" \
    IMAP_CAPABILITY="IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE" \
    couriertcpd -address=127.0.0.1 -nodnslookup -noidentlookup -pid="$dir/couriertcpd.pid" \
      "$port" "$(command -v couriertls)" -server -tcpd /usr/bin/imapd Maildir \
      </dev/null >"$dir/courier.log" 2>&1 &
  for _ in $(seq 100); do
    [ -s "$dir/couriertcpd.pid" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && exit 0
    sleep 0.1
  done
  echo "courier.sh: couriertcpd did not listen on $port:" >&2
  cat "$dir/courier.log" >&2
  exit 1
  ;;
stop)
  if [ -s "$dir/couriertcpd.pid" ]; then
    pid=$(cat "$dir/couriertcpd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/couriertcpd.pid"
  fi
  ;;
*)
  echo "courier.sh: unknown command $cmd" >&2
  exit 2
  ;;
esac
