#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the Debian packages, builds with
# -Wall -Wextra -Werror, runs every test (unit, cli, imap, fault), then builds again with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs every test again, then runs the
# unit tests under valgrind, then a short libFuzzer run of each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)

bash tests/setup-debian.sh --test

echo "== build: -Wall -Wextra -Werror" >&2
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== build: ASan + UBSan" >&2
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTLSRPT_WERROR=ON -DTLSRPT_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"

echo "== valgrind: unit tests" >&2
bash tests/valgrind.sh build

echo "== fuzz: each target for 60 s, then every hostile input replayed" >&2
bash tests/fuzz/run-short.sh 60
echo "== all tests passed" >&2
