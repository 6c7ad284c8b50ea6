#!/usr/bin/env bash
# Run a fuzz target once over every file of DIR (the committed hostile fixtures and crash
# regressions): none may crash. Usage: replay.sh FUZZER DIR
set -euo pipefail
fuzzer=$1; dir=$2
mapfile -d '' files < <(find "$dir" -type f ! -name '*.md' -print0 | sort -z)
if [ ${#files[@]} -eq 0 ]; then
  echo "replay: no files in $dir" >&2
  exit 1
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$fuzzer" -timeout=30 -rss_limit_mb=2048 "${files[@]}"
