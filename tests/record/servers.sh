#!/usr/bin/env bash
# The DNS and HTTPS servers of the `record check` tests, on 127.0.0.1 (test_record.c).
#   servers.sh start DIR DNS_PORT HTTPS_PORT
#       Writes the test zones (example. unsigned; secure.example. and bogus.example. signed with
#       ldns-signzone, bogus.example. then tampered with), a test CA and certificates,
#       and starts unbound (auth-zones, UDP+TCP on DNS_PORT) and nginx (HTTPS on
#       HTTPS_PORT, one server block per mta-sts.* host). DIR/ca.pem is the CA,
#       DIR/anchors.ds the trust anchors of the signed zones. A DIR/extra.zone written
#       before (test_trust.c: its DKIM keys) is included in example.
#   servers.sh stop DIR
# Needs the Debian packages unbound, ldnsutils, nginx-light and openssl.
set -euo pipefail
cmd=${1:?usage: servers.sh start DIR DNS_PORT HTTPS_PORT | stop DIR}
dir=${2:?missing DIR}

stop_pid() {
  local f=$1
  [ -s "$f" ] || return 0
  local pid; pid=$(cat "$f")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null && ! awk '{ exit !($3 == "Z") }' "/proc/$pid/stat" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$f"
}

case "$cmd" in
stop)
  stop_pid "$dir/unbound.pid"
  stop_pid "$dir/nginx.pid"
  exit 0
  ;;
start) ;;
*) echo "servers.sh: unknown command $cmd" >&2; exit 2 ;;
esac

dns_port=${3:?missing DNS_PORT}
https_port=${4:?missing HTTPS_PORT}
for p in unbound ldns-keygen ldns-signzone nginx openssl; do
  command -v "$p" >/dev/null 2>&1 || [ -x "/usr/sbin/$p" ] || {
    echo "servers.sh: $p is missing (Debian: unbound ldnsutils nginx-light openssl)" >&2
    exit 2
  }
done
PATH=$PATH:/usr/sbin
chmod 755 "$dir"
cd "$dir"
tlsa=$(printf '%064d' 0 | tr 0 a)

# ---- the unsigned zone example. ---------------------------------------------------------
cat >example.zone <<ZONE
\$ORIGIN example.
\$TTL 300
@                     SOA   ns.example. hostmaster.example. 1 3600 600 86400 300
@                     NS    ns.example.
ns                    A     127.0.0.1
; every MX host and policy host is this machine
mx                    A     127.0.0.1
; good: TLS-RPT, MTA-STS in enforce mode covering both MX
good                  MX    10 mx1.good
good                  MX    20 mx2.good
mx1.good              A     127.0.0.1
mx2.good              A     127.0.0.1
_smtp._tls.good       TXT   "v=TLSRPTv1; rua=mailto:tlsrpt@good.example"
_mta-sts.good         TXT   "v=STSv1; id=20260101"
mta-sts.good          A     127.0.0.1
; TLS-RPT cases (no MTA-STS)
missing               MX    10 mx.example.
apex                  MX    10 mx.example.
apex                  TXT   "v=TLSRPTv1; rua=mailto:tlsrpt@apex.example"
two                   MX    10 mx.example.
_smtp._tls.two        TXT   "v=TLSRPTv1; rua=mailto:a@two.example"
_smtp._tls.two        TXT   "v=TLSRPTv1; rua=mailto:b@two.example"
wrongver              MX    10 mx.example.
_smtp._tls.wrongver   TXT   "v=TLSRPTv2; rua=mailto:tlsrpt@wrongver.example"
nosemi                MX    10 mx.example.
_smtp._tls.nosemi     TXT   "v=TLSRPTv1 rua=mailto:tlsrpt@nosemi.example"
multi                 MX    10 mx.example.
_smtp._tls.multi      TXT   "v=TLSRPTv1; rua=mailto:tlsr" "pt@multi.example"
baduri                MX    10 mx.example.
_smtp._tls.baduri     TXT   "v=TLSRPTv1; rua=tlsrpt@baduri.example"
spf                   MX    10 mx.example.
_smtp._tls.spf        TXT   "v=TLSRPTv1; rua=mailto:tlsrpt@spf.example"
_smtp._tls.spf        TXT   "v=spf1 -all"
dup                   MX    10 mx.example.
_smtp._tls.dup        TXT   "v=TLSRPTv1; rua=mailto:a@dup.example,mailto:a@dup.example"
extauth               MX    10 mx.example.
_smtp._tls.extauth    TXT   "v=TLSRPTv1; rua=mailto:r@reports.example"
extauth.example._report._tls.reports TXT "v=TLSRPTv1"
extnoauth             MX    10 mx.example.
_smtp._tls.extnoauth  TXT   "v=TLSRPTv1; rua=mailto:r@reports.example"
hostile               MX    10 mx.example.
_smtp._tls.hostile    TXT   "v=TLSRPTv1; rua=mailto:a@hostile.example\\027[31m\\007"
; MTA-STS cases (each with a valid TLS-RPT record)
\$INCLUDE sts.zone
; DANE without DNSSEC
tlsa                  MX    10 mx.tlsa
mx.tlsa               A     127.0.0.1
_25._tcp.mx.tlsa      TLSA  3 1 1 $tlsa
_smtp._tls.tlsa       TXT   "v=TLSRPTv1; rua=mailto:tlsrpt@tlsa.example"
; the signed zones
secure                NS    ns.example.
bogus                 NS    ns.example.
ZONE
: >sts.zone
for c in ststwo sts404 stsbad stswrongcert stsuncovered stsredirect ststype stsnone; do
  printf '%s MX 10 mx.%s\n_smtp._tls.%s TXT "v=TLSRPTv1; rua=mailto:tlsrpt@%s.example"\n' \
    "$c" "$c" "$c" "$c" >>sts.zone
  printf 'mx.%s A 127.0.0.1\n' "$c" >>sts.zone
  [ "$c" = stsnone ] && continue
  printf '_mta-sts.%s TXT "v=STSv1; id=1"\nmta-sts.%s A 127.0.0.1\n' "$c" "$c" >>sts.zone
done
printf '_mta-sts.ststwo TXT "v=STSv1; id=2"\n' >>sts.zone
sed -i 's/^stsuncovered MX 10 mx.stsuncovered$/stsuncovered MX 10 mx.stsuncovered\nstsuncovered MX 20 backup.stsuncovered\nbackup.stsuncovered A 127.0.0.1/' sts.zone
sed -i "s|^\\\$INCLUDE sts.zone|\$INCLUDE $dir/sts.zone|" example.zone
# DIR/extra.zone, when a test wrote one (absolute names under example.): its records too.
if [ -f "$dir/extra.zone" ]; then printf '$INCLUDE %s/extra.zone\n' "$dir" >>example.zone; fi

# ---- the signed zones -------------------------------------------------------------------
: >anchors.ds
for z in secure bogus; do
  cat >$z.zone <<ZONE
\$ORIGIN $z.example.
\$TTL 300
@                     SOA   ns.example. hostmaster.example. 1 3600 600 86400 300
@                     NS    ns.example.
@                     MX    10 mx
mx                    A     127.0.0.1
_25._tcp.mx           TLSA  3 1 1 $tlsa
_smtp._tls            TXT   "v=TLSRPTv1; rua=mailto:tlsrpt@$z.example"
_smtp._tls.mx         TXT   "v=TLSRPTv1; rua=mailto:tlsrpt@$z.example"
ZONE
  rm -f K$z.example.*
  key=$(ldns-keygen -a ECDSAP256SHA256 -k $z.example)
  ldns-signzone -f $z.zone.signed $z.zone "$key" >/dev/null
  cat "$key.ds" >>anchors.ds
done
# bogus.example.: the TXT record changed after signing: its signature no longer matches.
sed -i 's/"v=TLSRPTv1; rua=mailto:tlsrpt@bogus.example"/"v=TLSRPTv1; rua=mailto:evil@bogus.example"/' \
  bogus.zone.signed

cat >unbound.conf <<CONF
server:
  interface: 127.0.0.1@$dns_port
  port: $dns_port
  do-ip6: no
  do-daemonize: yes
  username: ""
  chroot: ""
  directory: "$dir"
  pidfile: "$dir/unbound.pid"
  logfile: "$dir/unbound.log"
  use-syslog: no
  verbosity: 1
  num-threads: 1
  so-reuseport: no
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  do-not-query-localhost: no
remote-control:
  control-enable: no
auth-zone:
  name: "example."
  zonefile: "$dir/example.zone"
  for-downstream: yes
  for-upstream: no
  fallback-enabled: no
auth-zone:
  name: "secure.example."
  zonefile: "$dir/secure.zone.signed"
  for-downstream: yes
  for-upstream: no
  fallback-enabled: no
auth-zone:
  name: "bogus.example."
  zonefile: "$dir/bogus.zone.signed"
  for-downstream: yes
  for-upstream: no
  fallback-enabled: no
CONF

# ---- a test CA and the policy server -----------------------------------------------------
if [ ! -s ca.pem ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=tlsrpt-test-ca -days 2 \
    -keyout ca.key -out ca.pem 2>/dev/null
  sans="DNS:mta-sts.good.example"
  for c in sts404 stsbad stsuncovered stsredirect ststype ststwo; do sans="$sans,DNS:mta-sts.$c.example"; done
  for crt in good:"$sans" wrong:DNS:mta-sts.somewhere-else.example; do
    name=${crt%%:*}; san=${crt#*:}
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout $name.key -out $name.csr 2>/dev/null
    printf 'subjectAltName=%s\n' "$san" >$name.ext
    openssl x509 -req -in $name.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile $name.ext -out $name.pem 2>/dev/null
  done
fi
mkdir -p www logs
policy() { mkdir -p "www/$1/.well-known"; printf "$2" >"www/$1/.well-known/mta-sts.txt"; }
policy mta-sts.good.example 'version: STSv1\r\nmode: enforce\r\nmx: mx1.good.example\r\nmx: *.good.example\r\nmax_age: 604800\r\n'
policy mta-sts.stsbad.example 'version: STSv1\nmode: Enforce\nmx: mx.stsbad.example\nmax_age: 604800\n'
policy mta-sts.stsuncovered.example 'version: STSv1\nmode: enforce\nmx: mx.stsuncovered.example\nmax_age: 604800\n'
policy mta-sts.stswrongcert.example 'version: STSv1\nmode: enforce\nmx: mx.stswrongcert.example\nmax_age: 604800\n'
policy mta-sts.ststype.example 'version: STSv1\nmode: enforce\nmx: mx.ststype.example\nmax_age: 604800\n'
mkdir -p www/mta-sts.sts404.example
{
  cat <<CONF
user root;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log;
events { worker_connections 64; }
http {
  access_log off;
  types { }
  default_type text/plain;
  client_body_temp_path $dir/logs;
  proxy_temp_path $dir/logs;
  fastcgi_temp_path $dir/logs;
  uwsgi_temp_path $dir/logs;
  scgi_temp_path $dir/logs;
CONF
  for h in good sts404 stsbad stsuncovered stsredirect ststype stswrongcert; do
    cert=good; [ $h = stswrongcert ] && cert=wrong
    extra=""
    [ $h = stsredirect ] && extra="return 301 https://mta-sts.good.example:$https_port/.well-known/mta-sts.txt;"
    [ $h = ststype ] && extra="default_type text/html;"
    cat <<CONF
  server {
    listen 127.0.0.1:$https_port ssl;
    server_name mta-sts.$h.example;
    ssl_certificate $dir/$cert.pem;
    ssl_certificate_key $dir/$cert.key;
    root $dir/www/mta-sts.$h.example;
    $extra
  }
CONF
  done
  echo "}"
} >nginx.conf
nginx -p "$dir" -c "$dir/nginx.conf" -t >logs/nginx-example.log 2>&1 || { cat logs/nginx-example.log >&2; exit 1; }
unbound-checkconf unbound.conf >/dev/null 2>&1 || { unbound-checkconf unbound.conf >&2; exit 1; }
unbound -c "$dir/unbound.conf" </dev/null >logs/unbound-start.log 2>&1 || { cat logs/unbound-start.log unbound.log >&2 2>/dev/null; exit 1; }
nginx -p "$dir" -c "$dir/nginx.conf" </dev/null >logs/nginx-start.log 2>&1 || { cat logs/nginx-start.log >&2; exit 1; }
