#!/usr/bin/env bash
# Install what tlsrpt-ingest needs on Debian 12 (as root, with apt-get) and build it.
#   tests/setup-debian.sh            build dependencies + Release-ish build in ./build
#   tests/setup-debian.sh --test     also what the test suite needs (Dovecot, valgrind, clang)
# Idempotent: packages already installed are not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."

want=(build-essential cmake pkg-config libgmime-3.0-dev libglib2.0-dev libjson-c-dev
      libcurl4-openssl-dev zlib1g-dev)
if [ "${1:-}" = "--test" ]; then
  want+=(libcmocka-dev dovecot-imapd openssl valgrind clang libclang-rt-14-dev
         e2fsprogs util-linux procps procmail maildrop)
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

tests=OFF
[ "${1:-}" = "--test" ] && tests=ON
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLSRPT_WERROR=ON -DTLSRPT_TESTS=$tests >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "setup: built $(pwd)/build/tlsrpt-ingest" >&2
