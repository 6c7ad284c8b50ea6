#!/usr/bin/env bash
# Copy every fixture under FIXTURES/{corpus,synthetic,hostile} into SEED_DIR, flattened,
# each named by the SHA-1 of its content (as libFuzzer names corpus files), so reruns
# are idempotent. Usage: seed-corpus.sh FIXTURES SEED_DIR
set -euo pipefail
fixtures=$1; seeds=$2
mkdir -p "$seeds"
n=0
for sub in corpus synthetic hostile sample-maildir record; do
  [ -d "$fixtures/$sub" ] || continue
  while IFS= read -r -d '' f; do
    sum=$(sha1sum "$f" | cut -d' ' -f1)
    [ -e "$seeds/$sum" ] || cp "$f" "$seeds/$sum"
    n=$((n+1))
  done < <(find "$fixtures/$sub" -type f -size -1024k ! -name '*.md' -print0)
done
echo "seed-corpus: $n fixtures, $(ls "$seeds" | wc -l) distinct seeds in $seeds" >&2
