#!/usr/bin/env bash
# Run the unit test executables of BUILD_DIR under valgrind: any error or "definitely
# lost" leak from our code fails. Library globals are suppressed in tests/valgrind.supp.
# Forked children are not checked: the tests fork only to simulate a crash (_exit()
# without cleanup), whose memory is not a leak.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
supp=$(pwd)/tests/valgrind.supp
fail=0
for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  case "$name" in test_imap*|test_fault*) continue ;; esac   # real servers / kill tests: run natively
  if ! TLSRPT_FIXTURES=$(pwd)/fixtures TLSRPT_BIN=$(pwd)/$build/tlsrpt-ingest TLSRPT_VALGRIND=1 \
       valgrind -q --child-silent-after-fork=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
       --suppressions="$supp" "$t" >"$build/valgrind-$name.log" 2>&1; then
    echo "valgrind: $name FAILED (see $build/valgrind-$name.log)" >&2
    tail -40 "$build/valgrind-$name.log" >&2
    fail=1
  else
    echo "valgrind: $name clean" >&2
  fi
done
exit $fail
