#!/usr/bin/env bash
# Install what tlsrpt-ingest needs on Debian 12 (as root, with apt-get) and build it.
#   tests/setup-debian.sh            build dependencies + Release-ish build in ./build
#   tests/setup-debian.sh --test     also what the test suite needs (Dovecot, valgrind, clang)
# Idempotent: packages already installed are not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."

want=(build-essential cmake pkg-config libgmime-3.0-dev libglib2.0-dev libjson-c-dev
      libcurl4-openssl-dev zlib1g-dev libmicrohttpd-dev libsqlite3-dev libunbound-dev
      libpq-dev libopendkim-dev libpsl-dev publicsuffix)
if [ "${1:-}" = "--test" ]; then
  # courier-imap and dovecot-imapd both declare Conflicts: imap-server: Courier is
  # installed, Dovecot's IMAP processes are unpacked beside it (below).
  want+=(libcmocka-dev dovecot-core courier-imap courier-authlib-userdb openssl valgrind
         clang libclang-rt-14-dev e2fsprogs util-linux procps procmail maildrop iproute2
         curl sqlite3 systemd unbound ldnsutils nginx-light prometheus jq chromium
         postgresql opendkim-tools)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# Dovecot's imap and imap-login, unpacked (not installed) where tests/imap/dovecot.sh
# looks for them when /usr/lib/dovecot/imap is not there.
imapd=${TLSRPT_DOVECOT_IMAPD:-/usr/local/lib/tlsrpt-test/dovecot-imapd}
if [ "${1:-}" = "--test" ] && [ ! -x /usr/lib/dovecot/imap ] &&
   [ ! -x "$imapd/usr/lib/dovecot/imap" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: Dovecot's imap processes are missing (run as root)" >&2
    exit 1
  fi
  echo "setup: unpacking dovecot-imapd into $imapd" >&2
  # The same version as the installed dovecot-core (its libraries are used).
  ver=$(dpkg-query -W -f='${Version}' dovecot-core)
  deb=/var/cache/apt/archives/dovecot-imapd_${ver/:/%3a}_$(dpkg --print-architecture).deb
  if [ ! -s "$deb" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -q "dovecot-imapd=$ver" >/dev/null)
    deb=$(find "$tmp" -name 'dovecot-imapd_*.deb' | head -n 1)
  fi
  mkdir -p "$imapd"
  dpkg -x "$deb" "$imapd"
fi

tests=OFF
[ "${1:-}" = "--test" ] && tests=ON
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLSRPT_WERROR=ON -DTLSRPT_TESTS=$tests >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "setup: built $(pwd)/build/tlsrpt-ingest" >&2
