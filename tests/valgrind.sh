#!/usr/bin/env bash
# Run the unit test executables of BUILD_DIR under valgrind: any error or "definitely
# lost" leak from our code fails, then the CLI golden cases with the binary under
# valgrind. Library globals are suppressed in tests/valgrind.supp.
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
  if ! TLSRPT_FIXTURES=$(pwd)/fixtures TLSRPT_SOURCE_DIR=$(pwd) TLSRPT_BIN=$(pwd)/$build/tlsrpt-ingest TLSRPT_DKIM_SIGN=$(pwd)/$build/tests/tlsrpt-dkim-sign TLSRPT_VALGRIND=1 \
       valgrind -q --child-silent-after-fork=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
       --suppressions="$supp" "$t" >"$build/valgrind-$name.log" 2>&1; then
    echo "valgrind: $name FAILED (see $build/valgrind-$name.log)" >&2
    tail -40 "$build/valgrind-$name.log" >&2
    fail=1
  else
    echo "valgrind: $name clean" >&2
  fi
done

# The CLI golden cases with the binary itself under valgrind: a wrapper takes its place
# (so that procmail and maildrop run it too); valgrind's reports go to log files, and an
# error or a "definitely lost" leak turns the exit code into 99, which fails the case.
vgdir=$(pwd)/$build/valgrind-cli
rm -rf "$vgdir"
mkdir -p "$vgdir"
wrapper=$vgdir/tlsrpt-ingest
{
  echo '#!/bin/sh'
  echo "exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \\"
  echo "  --child-silent-after-fork=yes --suppressions='$supp' --log-file='$vgdir/vg-%p.log' \\"
  echo "  '$(pwd)/$build/tlsrpt-ingest' \"\$@\""
} >"$wrapper"
chmod +x "$wrapper"
if GOLDEN_UNDER_VALGRIND=1 bash tests/cli/run-golden.sh "$wrapper" "$(pwd)/tests/cli" "$(pwd)" >"$build/valgrind-cli.log" 2>&1; then
  echo "valgrind: cli golden cases clean ($(tail -1 "$build/valgrind-cli.log"))" >&2
else
  echo "valgrind: cli golden cases FAILED (see $build/valgrind-cli.log and $vgdir)" >&2
  grep -v '^ok ' "$build/valgrind-cli.log" | tail -40 >&2
  for f in "$vgdir"/vg-*.log; do [ -s "$f" ] && { echo "== $f" >&2; head -40 "$f" >&2; }; done
  fail=1
fi
exit $fail
