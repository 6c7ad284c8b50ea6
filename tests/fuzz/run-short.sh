#!/usr/bin/env bash
# Build the fuzz targets (clang, ASan + UBSan, libFuzzer) in build-fuzz/ and run the
# "fuzz" tests: each target for FUZZ_SECONDS (default 60) over the seeds from fixtures/,
# then every fixtures/hostile/ input replayed once. Exit status: 0 when nothing crashed.
# Usage: tests/fuzz/run-short.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-${FUZZ_SECONDS:-60}}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DTLSRPT_FUZZ=ON \
  -DTLSRPT_SANITIZE=ON -DTLSRPT_TESTS=OFF -DTLSRPT_FUZZ_SECONDS="$seconds" >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
ctest --test-dir build-fuzz/tests/fuzz -L fuzz --output-on-failure
