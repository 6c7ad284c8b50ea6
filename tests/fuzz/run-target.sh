#!/usr/bin/env bash
# One bounded libFuzzer run. Usage: run-target.sh FUZZER CORPUS_DIR SEED_DIR ARTIFACT_DIR SECONDS
# New coverage is kept in CORPUS_DIR (seeds are read, never written); a crash is written
# to ARTIFACT_DIR/crash-* and fails the run: minimize it, then commit it to
# fixtures/hostile/ (see tests/fuzz/README.md).
set -euo pipefail
fuzzer=$1; corpus=$2; seeds=$3; artifacts=$4; seconds=$5
mkdir -p "$corpus" "$artifacts"
# Library leaks are checked by the sanitizer build of the whole suite and by valgrind;
# here they would only stop the run at the first one found, so they are reported too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -max_len=262144 -print_final_stats=1 -artifact_prefix="$artifacts/" \
  "$corpus" "$seeds"
