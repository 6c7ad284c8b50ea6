#!/usr/bin/env bash
# run.sh - the performance benchmark of tlsrpt-ingest (see docs/performance.md).
#
#   tests/bench/run.sh [--runs N] [--big] [--floors-only] [--keep]
#
# Builds a Release binary (build-bench/), the corpus generator and the floor programs,
# generates the corpora under $BENCH_DIR (default /var/tmp), runs every scenario N
# times (default 5) and prints a Markdown table: median wall time, median CPU time,
# messages/s, MB/s, peak RSS, the target and whether it was met.
#
#   --runs N        timed runs per scenario (the mda scenario runs 100 deliveries each)
#   --big           also the 200,000-message Maildir (RSS must stay flat; ~1 GB of
#                   files, about a minute to generate)
#   --floors-only   only the floors (no tlsrpt-ingest build)
#   --keep          keep the work directory (corpora, stores, CSV) for inspection
#
# Environment: BENCH_DIR (where the work directory goes), TLSRPT_INGEST (measure this
# binary instead of building one), CC.
#
# Exits 0 when every command ran, even if targets are missed (the table says so), and
# non-zero when a build or a measured command failed.
set -euo pipefail

RUNS=5
BIG=0
FLOORS_ONLY=0
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
    --runs=*) RUNS=${1#--runs=}; shift ;;
    --big) BIG=1; shift ;;
    --floors-only) FLOORS_ONLY=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "run.sh: --runs takes a positive number" >&2; exit 2 ;; esac

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=$REPO/build-bench
BENCH_DIR=${BENCH_DIR:-/var/tmp}
mkdir -p "$BENCH_DIR"
WORK=$(mktemp -d "$BENCH_DIR/tlsrpt-bench.XXXXXX")
cleanup() {
  if [ "$KEEP" = 1 ]; then
    echo "work directory kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

FAILED=0
log() { printf "[%4ds] %s\n" "$SECONDS" "$*" >&2; }

# ------------------------------------------------------------------ machine
fs_type=$(stat -f -c %T "$WORK" 2>/dev/null || echo unknown)
fs_dev=$(df -P "$WORK" 2>/dev/null | awk 'NR==2 {print $1}')
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
mem_mb=$(awk '/^MemTotal/ {printf "%d", $2/1024}' /proc/meminfo 2>/dev/null || true)
echo "## Machine"
echo
echo "- CPU: ${cpu_model:-unknown}, $(nproc) cores (nproc)"
echo "- memory: ${mem_mb:-?} MB"
echo "- bench directory: $WORK (file system $fs_type on ${fs_dev:-?})"
echo "- kernel: $(uname -sr); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- runs per scenario: $RUNS (median wall time; peak RSS is the largest of the runs)"
echo

# ------------------------------------------------------------------ builds
BIN_DIR=$WORK/bin
mkdir -p "$BIN_DIR"
CC=${CC:-cc}
CFLAGS_BENCH="-std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra"
log "building the benchmark tools"
$CC $CFLAGS_BENCH -o "$BIN_DIR/gen-corpus" "$HERE/gen-corpus.c" -lz
$CC $CFLAGS_BENCH -o "$BIN_DIR/floor-decode" "$HERE/floor-decode.c" -lz
$CC $CFLAGS_BENCH -o "$BIN_DIR/floor-files" "$HERE/floor-files.c"
$CC $CFLAGS_BENCH -o "$BIN_DIR/rusage" "$HERE/rusage.c"
RUSAGE=$BIN_DIR/rusage

TI=""
if [ "$FLOORS_ONLY" = 0 ] && [ -n "${TLSRPT_INGEST:-}" ]; then
  TI=$TLSRPT_INGEST
  log "measuring $TI (TLSRPT_INGEST), no build"
elif [ "$FLOORS_ONLY" = 0 ]; then
  log "building tlsrpt-ingest (Release) in $BUILD"
  if cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTLSRPT_TESTS=OFF >"$WORK/cmake.log" 2>&1 &&
     cmake --build "$BUILD" -j "$(nproc)" --target tlsrpt-ingest >>"$WORK/cmake.log" 2>&1; then
    TI=$BUILD/tlsrpt-ingest
  else
    log "run.sh: the Release build failed (last lines of the log follow); floors only"
    tail -n 20 "$WORK/cmake.log" >&2
    FAILED=1
  fi
fi

# ------------------------------------------------------------------ corpora
CORPUS=$WORK/corpus
mkdir -p "$CORPUS"
# gen NAME ARGS...: runs the generator, keeps its statistics line in $CORPUS/NAME.stats
gen() {
  local name=$1; shift
  log "generating $name"
  "$BIN_DIR/gen-corpus" "$@" >"$CORPUS/$name.stats"
}
stat_of() { # stat_of NAME KEY
  tr ' ' '\n' <"$CORPUS/$1.stats" | awk -F= -v k="$2" '$1 == k {print $2}'
}
gen md10k --format maildir --count 10000 --out "$CORPUS/md10k"
gen mbox10k --format mbox --count 10000 --out "$CORPUS/mbox10k.mbox"
gen large --format report --count 0 --large 1 --details 200000 --out "$CORPUS/large"
LARGE_FILE=$(ls "$CORPUS"/large/*.json.gz)
if [ "$BIG" = 1 ]; then
  gen md200k --format maildir --count 200000 --out "$CORPUS/md200k"
fi
# mda: 100 distinct valid report messages, delivered one after the other. The file
# name holds the message number (NNN.M<number>P...); numbers ending in 37, 53 and 71
# are the non-reports and broken reports (see gen-corpus.c).
mkdir -p "$CORPUS/mda"
n=0
for f in "$CORPUS"/md10k/new/*; do
  [[ $(basename "$f") =~ \.M([0-9]+)P ]] || continue
  case $(( BASH_REMATCH[1] % 100 )) in 37|53|71) continue ;; esac
  cp "$f" "$CORPUS/mda/$(printf '%03d' $n)"
  n=$((n + 1))
  [ $n -lt 100 ] || break
done
sync

# ------------------------------------------------------------------ measuring
# Results of one scenario: arrays of wall, cpu and rss per run.
declare -a R_WALL R_CPU R_RSS
declare -a ROWS=()

median() { # numbers on stdin -> median
  sort -g | awk '{a[NR] = $1} END {if (NR == 0) {print "nan"; exit}
    if (NR % 2) print a[(NR + 1) / 2]; else printf "%.6f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
maxof() { sort -g | tail -n 1; }

# run_once OK_CODES STDIN CMD...: one timed run; appends to R_WALL/R_CPU/R_RSS.
# OK_CODES is a space-separated list of acceptable exit codes.
run_once() {
  local ok=$1 input=$2; shift 2
  local out=$WORK/rusage.out rc=0
  if [ -n "$input" ]; then
    "$RUSAGE" -o "$out" -i "$input" -O "$WORK/last.stdout" -- "$@" 2>"$WORK/last.stderr" || rc=$?
  else
    "$RUSAGE" -o "$out" -O "$WORK/last.stdout" -- "$@" 2>"$WORK/last.stderr" || rc=$?
  fi
  if [ ! -s "$out" ] || ! printf ' %s ' "$ok" | grep -q " $rc "; then
    log "run.sh: command failed (exit $rc): $*"
    tail -n 5 "$WORK/last.stderr" >&2 || true
    FAILED=1
    return 1
  fi
  local wall user sys rss
  read -r wall user sys rss _ < <(tr ' ' '\n' <"$out" | cut -d= -f2 | tr '\n' ' ')
  R_WALL+=("$wall")
  R_CPU+=("$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.6f", u + s}')")
  R_RSS+=("$rss")
  return 0
}

reset_results() { R_WALL=(); R_CPU=(); R_RSS=(); }

# record NAME MESSAGES BYTES TARGET_KIND TARGET_VALUE TARGET_TEXT
#   TARGET_KIND: wall (seconds, <=), rss (MB, <=), none
record() {
  local name=$1 msgs=$2 bytes=$3 kind=$4 tval=$5 ttext=$6
  LAST_WALL=nan LAST_RSS_MB=nan
  if [ ${#R_WALL[@]} -eq 0 ]; then
    ROWS+=("| $name | failed | | | | | $ttext | no |")
    return
  fi
  local wall cpu rss
  wall=$(printf '%s\n' "${R_WALL[@]}" | median)
  cpu=$(printf '%s\n' "${R_CPU[@]}" | median)
  rss=$(printf '%s\n' "${R_RSS[@]}" | maxof)
  local rss_mb mps mbps met="-"
  rss_mb=$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')
  mps=$(awk -v m="$msgs" -v w="$wall" 'BEGIN {if (m > 0 && w > 0) printf "%.0f", m / w; else print "-"}')
  mbps=$(awk -v b="$bytes" -v w="$wall" 'BEGIN {if (b > 0 && w > 0) printf "%.1f", b / 1e6 / w; else print "-"}')
  case $kind in
    wall) met=$(awk -v a="$wall" -v t="$tval" 'BEGIN {print (a <= t) ? "yes" : "no"}') ;;
    rss) met=$(awk -v a="$rss_mb" -v t="$tval" 'BEGIN {print (a <= t) ? "yes" : "no"}') ;;
  esac
  LAST_WALL=$wall LAST_RSS_MB=$rss_mb
  ROWS+=("| $name | $(printf '%.3f' "$wall") | $(printf '%.3f' "$cpu") | $mps | $mbps | $rss_mb | $ttext | $met |")
}

NOTES=()
note() { NOTES+=("$*"); }

MD10K_BYTES=$(stat_of md10k bytes)
MBOX_BYTES=$(stat_of mbox10k bytes)

# ------------------------------------------------------------------ floors
log "floor: reading the files only"
reset_results
for _ in $(seq "$RUNS"); do run_once "0" "" "$BIN_DIR/floor-decode" --read-only maildir "$CORPUS/md10k" || break; done
record "floor: read 10,000 files" 10000 "$MD10K_BYTES" none 0 "(floor)"

log "floor: read + base64 + inflate"
reset_results
for _ in $(seq "$RUNS"); do run_once "0" "" "$BIN_DIR/floor-decode" maildir "$CORPUS/md10k" || break; done
record "floor: read + base64 + inflate, no JSON" 10000 "$MD10K_BYTES" none 0 "(floor)"
DECODE_FLOOR=$LAST_WALL

# Every run that creates files gets a directory of its own, and they are all removed
# together at the end (discard): removing one run's files just before the next run
# creates as many would measure ext4's allocator skipping the inodes freed less than a
# minute ago (recently_deleted(), on a file system without a journal: up to a whole
# inode group scanned per new inode), not the program. See docs/performance.md.
DISCARD=$WORK/discard
mkdir -p "$DISCARD"
discard() { for d in "$@"; do [ -e "$d" ] && mv "$d" "$DISCARD/$(basename "$d").$RANDOM$RANDOM"; done; return 0; }

log "floor: creating 20,000 files"
reset_results
FF_CREATE=() FF_SYNC=()
for i in $(seq "$RUNS"); do
  sync
  run_once "0" "" "$BIN_DIR/floor-files" "$WORK/ff.$i" 20000 2000 || break
  FF_CREATE+=("$(tr ' ' '\n' <"$WORK/last.stdout" | awk -F= '$1 == "create" {print $2}')")
  FF_SYNC+=("$(tr ' ' '\n' <"$WORK/last.stdout" | awk -F= '$1 == "syncfs" {print $2}')")
done
record "floor: create 20,000 files (write + rename) + syncfs" 20000 0 none 0 "(floor)"
FILES_FLOOR=$LAST_WALL
if [ ${#FF_CREATE[@]} -gt 0 ]; then
  note "File-creation floor: median $(printf '%s\n' "${FF_CREATE[@]}" | median) s creating, $(printf '%s\n' "${FF_SYNC[@]}" | median) s in the final syncfs."
fi

# ------------------------------------------------------------------ tlsrpt-ingest
# csv_rows FILE: data rows of a CSV file (lines minus the header)
csv_rows() { if [ -f "$1" ]; then echo $(( $(wc -l <"$1") - 1 )); else echo 0; fi; }
ING_OK="0 1"   # 1: some messages quarantined (the corpus holds 1 % broken reports)

if [ -n "$TI" ]; then
  EXPECT_ROWS=$(stat_of md10k rows)
  "$TI" --version | head -n 1 | sed 's/^/- binary: /'
  echo

  log "tlsrpt-ingest maildir --no-store --csv (10,000)"
  reset_results
  for _ in $(seq "$RUNS"); do
    rm -rf "$WORK/state" "$WORK/out.csv"
    run_once "$ING_OK" "" "$TI" maildir --no-store --csv "$WORK/out.csv" --store "$WORK/state" \
      "$CORPUS/md10k" || break
  done
  record "maildir 10,000 -> CSV (--no-store)" 10000 "$MD10K_BYTES" wall 0.5 "<= 0.5 s"
  CSV_RSS_10K=$LAST_RSS_MB
  note "CSV check: $(csv_rows "$WORK/out.csv") rows written, $EXPECT_ROWS expected from the corpus."
  note "maildir --no-store vs the decode floor: $(awk -v a="$LAST_WALL" -v b="$DECODE_FLOOR" 'BEGIN {printf "%.1f", a / b}')x (goal <= 3x)."

  log "tlsrpt-ingest maildir, tree store + CSV (10,000)"
  reset_results
  for _ in $(seq "$RUNS"); do
    discard "$WORK/store" "$WORK/store.csv"
    sync
    run_once "$ING_OK" "" "$TI" maildir --store "$WORK/store" --csv "$WORK/store.csv" \
      "$CORPUS/md10k" || break
  done
  record "maildir 10,000 -> tree store + CSV" 10000 "$MD10K_BYTES" wall 1.5 "<= 1.5 s"
  STORE_WALL=$LAST_WALL
  note "Tree store vs the file-creation floor: $(awk -v a="$LAST_WALL" -v b="$FILES_FLOOR" 'BEGIN {printf "%.2f", a / b}')x (goal <= 1.5x); $(find "$WORK/store" -type f 2>/dev/null | wc -l) files in the store."

  # The same comparison against creating exactly the files and directories the store
  # run made (its layout needs a directory per domain and day: 1.5 per report here).
  log "floor: creating the store's own tree"
  reset_results
  for i in $(seq "$RUNS"); do
    sync
    run_once "0" "" "$BIN_DIR/floor-files" --like "$WORK/store" "$WORK/like.$i" || break
  done
  LIKE_LINE=$(cat "$WORK/last.stdout" 2>/dev/null || true)
  discard "$WORK"/like.*
  record "floor: create the store's tree (same files and directories) + syncfs" 10000 0 none 0 "(floor)"
  note "Tree store vs creating its own tree ($(echo "$LIKE_LINE" | tr ' ' '\n' | grep -E '^(files|dirs)=' | tr '\n' ' ')single-threaded, one syncfs): $(awk -v a="$STORE_WALL" -v b="$LAST_WALL" 'BEGIN {printf "%.2f", a / b}')x."

  log "tlsrpt-ingest maildir rerun (all duplicates)"
  reset_results
  for _ in $(seq "$RUNS"); do
    run_once "$ING_OK" "" "$TI" maildir --store "$WORK/store" --csv "$WORK/store.csv" \
      "$CORPUS/md10k" || break
  done
  record "maildir 10,000 rerun (all duplicates)" 10000 "$MD10K_BYTES" wall 0.2 "<= 0.2 s"
  note "Rerun check: the CSV still has $(csv_rows "$WORK/store.csv") rows."

  log "tlsrpt-ingest mbox --no-store --csv (10,000)"
  reset_results
  for _ in $(seq "$RUNS"); do
    rm -rf "$WORK/state" "$WORK/out.csv"
    run_once "$ING_OK" "" "$TI" mbox --no-store --csv "$WORK/out.csv" --store "$WORK/state" \
      "$CORPUS/mbox10k.mbox" || break
  done
  record "mbox 10,000 -> CSV (--no-store)" 10000 "$MBOX_BYTES" wall 0.5 "<= 0.5 s (as maildir)"
  note "mbox CSV check: $(csv_rows "$WORK/out.csv") rows written, $(stat_of mbox10k rows) expected."

  log "process start: tlsrpt-ingest --help, 20 per run"
  reset_results
  for _ in $(seq "$RUNS"); do
    for _ in $(seq 20); do run_once "0" "" "$TI" --help || break 2; done
  done
  record "floor: process start (tlsrpt-ingest --help, $((RUNS * 20)) starts)" 1 0 none 0 "(floor for mda)"
  note "Process start: $(ldd "$TI" 2>/dev/null | wc -l) shared objects loaded; --help costs $(printf '%.1f' "$(awk -v w="$LAST_WALL" 'BEGIN {print w * 1000}')") ms median wall."

  log "tlsrpt-ingest mda, 100 deliveries per run"
  reset_results
  for _ in $(seq "$RUNS"); do
    discard "$WORK/mda-store"
    for m in "$CORPUS"/mda/*; do
      run_once "0" "$m" "$TI" mda --store "$WORK/mda-store" --csv "$WORK/mda-store/reports.csv" || break 2
    done
  done
  MDA_BYTES=$(cat "$CORPUS"/mda/* | wc -c)
  MDA_N=$(ls "$CORPUS/mda" | wc -l)
  record "mda, one message (median of $((RUNS * MDA_N)) deliveries)" 1 $((MDA_BYTES / MDA_N)) wall 0.005 "<= 5 ms"
  note "mda: $(awk -v w="$LAST_WALL" 'BEGIN {printf "%.2f", w * 1000}') ms median wall per delivery, end to end (start, parse, durable write, exit); $(csv_rows "$WORK/mda-store/reports.csv") CSV rows after the last run of $MDA_N deliveries."

  if [ "$BIG" = 1 ]; then
    BIG_RUNS=$(( RUNS < 3 ? RUNS : 3 ))
    log "tlsrpt-ingest maildir --no-store --csv (200,000; $BIG_RUNS runs)"
    reset_results
    for _ in $(seq "$BIG_RUNS"); do
      rm -rf "$WORK/state" "$WORK/out.csv"
      run_once "$ING_OK" "" "$TI" maildir --no-store --csv "$WORK/out.csv" --store "$WORK/state" \
        "$CORPUS/md200k" || break
    done
    record "maildir 200,000 -> CSV (--no-store)" 200000 "$(stat_of md200k bytes)" rss 32 "peak RSS <= 32 MB"
    note "Peak RSS 10,000 vs 200,000 messages: ${CSV_RSS_10K:-?} MB vs $LAST_RSS_MB MB (target: <= 32 MB and flat)."
    note "200,000 CSV check: $(csv_rows "$WORK/out.csv") rows written, $(stat_of md200k rows) expected."
    rm -rf "$WORK/state" "$WORK/out.csv"
  else
    note "Peak RSS for 200,000 messages: run with --big."
  fi

  log "tlsrpt-ingest file: one report of 200,000 failure details"
  LARGE_JSON=$(stat_of large json_bytes)
  LARGE_LIMIT_MB=$(awk -v j="$LARGE_JSON" 'BEGIN {printf "%.1f", 3 * j / 1048576}')
  reset_results
  for _ in $(seq "$RUNS"); do
    rm -rf "$WORK/state" "$WORK/out.csv"
    run_once "$ING_OK" "" "$TI" file --no-store --csv "$WORK/out.csv" --store "$WORK/state" \
      "$LARGE_FILE" || break
  done
  record "file: 1 report, 200,000 failure details" 1 "$(stat_of large bytes)" rss "$LARGE_LIMIT_MB" "peak RSS <= $LARGE_LIMIT_MB MB (3x JSON)"
  note "Large report: $(awk -v j="$LARGE_JSON" 'BEGIN {printf "%.1f", j / 1048576}') MB of JSON inflated, peak RSS $LAST_RSS_MB MB = $(awk -v r="$LAST_RSS_MB" -v j="$LARGE_JSON" 'BEGIN {printf "%.2f", r * 1048576 / j}')x the JSON (goal <= 3x); $(csv_rows "$WORK/out.csv") CSV rows, $(stat_of large rows) expected."
fi

# ------------------------------------------------------------------ table
echo "## Corpus"
echo
echo "- Maildir 10,000: $(stat_of md10k messages) messages, $(awk -v b="$MD10K_BYTES" 'BEGIN {printf "%.1f", b / 1e6}') MB, $(stat_of md10k reports) reports ($(stat_of md10k nonreports) non-reports, $(stat_of md10k broken) broken), $(stat_of md10k rows) CSV rows expected"
echo "- mbox 10,000: the same messages in one file, $(awk -v b="$MBOX_BYTES" 'BEGIN {printf "%.1f", b / 1e6}') MB"
[ "$BIG" = 1 ] && echo "- Maildir 200,000: $(awk -v b="$(stat_of md200k bytes)" 'BEGIN {printf "%.1f", b / 1e6}') MB, $(stat_of md200k rows) CSV rows expected"
echo "- large report: $(basename "$LARGE_FILE"), $(stat_of large bytes) bytes gzip, $(stat_of large json_bytes) bytes JSON"
echo
echo "## Results"
echo
echo "| scenario | median wall s | median CPU s | messages/s | MB/s | peak RSS MB | target | met? |"
echo "|---|---:|---:|---:|---:|---:|---|---|"
for r in "${ROWS[@]}"; do echo "$r"; done
echo
for n in "${NOTES[@]}"; do echo "- $n"; done
echo
echo "MB/s counts the input as stored (message files, the mbox file, the .json.gz file)."
echo "CPU = user + system time of the measured process."

exit "$FAILED"
