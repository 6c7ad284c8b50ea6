#!/usr/bin/env bash
# profile.sh - where tlsrpt-ingest spends its instructions (see docs/performance.md).
#
#   tests/bench/profile.sh [--count N] [--store] [--keep]
#
# Builds tlsrpt-ingest with -O2 -g (RelWithDebInfo) in a work directory under
# $BENCH_DIR (default /var/tmp), generates a Maildir of N messages (default 1,000) with
# gen-corpus, and runs
#   valgrind --tool=callgrind tlsrpt-ingest maildir --no-store --csv OUT --store STATE DIR
# (with --store: the default tree store instead of --no-store). Prints the total
# instruction count and the functions with the largest exclusive and inclusive shares.
# Instruction counts do not depend on the load of the machine, unlike wall time.
set -euo pipefail

COUNT=1000
STORE=0
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --count) COUNT=${2:?--count needs a number}; shift 2 ;;
    --store) STORE=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "profile.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null || { echo "profile.sh: valgrind is not installed" >&2; exit 1; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/var/tmp}
WORK=$(mktemp -d "$BENCH_DIR/tlsrpt-profile.XXXXXX")
trap '[ "$KEEP" = 1 ] && echo "kept: $WORK" >&2 || rm -rf "$WORK"' EXIT

echo "building (RelWithDebInfo) in $WORK/build" >&2
cmake -S "$REPO" -B "$WORK/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLSRPT_TESTS=OFF \
  >"$WORK/build.log" 2>&1
cmake --build "$WORK/build" -j "$(nproc)" --target tlsrpt-ingest >>"$WORK/build.log" 2>&1 ||
  { tail -n 20 "$WORK/build.log" >&2; exit 1; }
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -o "$WORK/gen-corpus" "$HERE/gen-corpus.c" -lz
"$WORK/gen-corpus" --format maildir --count "$COUNT" --out "$WORK/md" >&2

if [ "$STORE" = 1 ]; then
  args=(maildir --store "$WORK/store" --csv "$WORK/out.csv" "$WORK/md")
else
  args=(maildir --no-store --csv "$WORK/out.csv" --store "$WORK/state" "$WORK/md")
fi
rc=0
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
  "$WORK/build/tlsrpt-ingest" "${args[@]}" 2>"$WORK/valgrind.log" || rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
  echo "profile.sh: tlsrpt-ingest exited $rc" >&2
  tail -n 20 "$WORK/valgrind.log" >&2
  exit 1
fi
# annotate MODE: the table of callgrind_annotate, its first 40 functions
annotate() {
  callgrind_annotate --inclusive="$1" --auto=no "$WORK/callgrind.out" 2>/dev/null |
    sed -n '/^Ir/,$p' | awk 'n++ < 44'
}
echo "== tlsrpt-ingest ${args[*]//$WORK\//}"
echo "== exclusive (self) instruction counts"
annotate no
echo
echo "== exclusive instruction counts by object file"
callgrind_annotate --inclusive=no --threshold=100 --auto=no "$WORK/callgrind.out" 2>/dev/null |
  awk '/PROGRAM TOTALS/ {gsub(",", "", $1); total = $1; next}
       /file:function/ {table = 1; next}
       table && /^$/ {table = 0}
       table && /^ *[0-9,]+ \(/ {n = $1; gsub(",", "", n); obj = "tlsrpt-ingest"
         if (match($0, /\[[^]]*\]$/)) { obj = substr($0, RSTART + 1, RLENGTH - 2); sub(/.*\//, "", obj) }
         if (obj ~ /^tlsrpt-ingest/) obj = "tlsrpt-ingest"
         sum[obj] += n}
       END {for (o in sum) printf "%6.2f%%  %s\n", 100 * sum[o] / total, o}' | sort -rn | awk 'n++ < 15'
echo
echo "== inclusive instruction counts"
annotate yes
