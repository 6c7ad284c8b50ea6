#!/usr/bin/env bash
# CLI golden cases. Each directory tests/cli/NNN-name/ holds:
#   cmd              one shell command line; $BIN is the binary, $FIX the fixtures dir,
#                    $TMP a fresh empty directory for this case, $CASE the case dir
#   stdin            (optional) fed to the command's standard input
#   expected-exit    the exit code
#   expected-stdout  (optional) exact standard output, after $TMP/$FIX substitution
#   expected-stderr  (optional) exact standard error, likewise
#   check            (optional) shell script run afterwards (same variables); must exit 0
#   no-valgrind      (optional) why the case cannot run with $BIN under valgrind: it is
#                    skipped when GOLDEN_UNDER_VALGRIND=1 (tests/valgrind.sh sets it)
# Usage: run-golden.sh BIN CASES_DIR SOURCE_DIR [CASE...]
set -u
BIN=$1; CASES=$2; SRC=$3; shift 3
FIX=$SRC/fixtures
export BIN FIX
pass=0; failn=0; skipn=0; failed=()
list=("$@")
[ ${#list[@]} -eq 0 ] && list=($(cd "$CASES" && ls -d [0-9]*/ 2>/dev/null | tr -d /))
for c in "${list[@]}"; do
  CASE=$CASES/$c
  if [ "${GOLDEN_UNDER_VALGRIND:-0}" = 1 ] && [ -f "$CASE/no-valgrind" ]; then
    skipn=$((skipn+1)); echo "skip $c: $(head -1 "$CASE/no-valgrind")"; continue
  fi
  TMP=$(mktemp -d /tmp/tlsrpt-golden-XXXXXX)
  export TMP CASE
  # No case asks the DNS for DKIM keys (the corpus mails are signed): the default config
  # file takes them from an empty file (no key: permerror), unless a case gives --config.
  CONF=$(mktemp -d /tmp/tlsrpt-golden-conf-XXXXXX)
  mkdir -p "$CONF/tlsrpt-ingest"
  : >"$CONF/no.keys"
  printf '[tlsrpt-ingest]\ndkim-keys = %s\n' "$CONF/no.keys" >"$CONF/tlsrpt-ingest/config"
  export XDG_CONFIG_HOME=$CONF
  in=/dev/null; [ -f "$CASE/stdin" ] && in=$CASE/stdin
  (cd "$TMP" && bash -c "$(cat "$CASE/cmd")" <"$in" >"$TMP/.stdout" 2>"$TMP/.stderr")
  rc=$?
  ok=1; why=""
  want=$(cat "$CASE/expected-exit")
  [ "$rc" = "$want" ] || { ok=0; why="exit $rc, expected $want"; }
  for s in stdout stderr; do
    if [ $ok = 1 ] && [ -f "$CASE/expected-$s" ]; then
      sed -e "s#$TMP#\$TMP#g" -e "s#$FIX#\$FIX#g" "$TMP/.$s" >"$TMP/.$s.norm"
      if ! diff -u "$CASE/expected-$s" "$TMP/.$s.norm" >"$TMP/.diff"; then
        ok=0; why="$s differs:
$(cat "$TMP/.diff")"
      fi
    fi
  done
  if [ $ok = 1 ] && [ -f "$CASE/check" ]; then
    if ! out=$(cd "$TMP" && bash "$CASE/check" 2>&1); then ok=0; why="check failed: $out"; fi
  fi
  if [ $ok = 1 ]; then
    pass=$((pass+1)); echo "ok   $c"
  else
    failn=$((failn+1)); failed+=("$c"); echo "FAIL $c: $why"
    echo "--- stderr:"; head -20 "$TMP/.stderr"
  fi
  rm -rf "$TMP" "$CONF"
done
if [ $skipn -gt 0 ]; then
  echo "golden: ${pass} passed, ${failn} failed, ${skipn} skipped"
else
  echo "golden: ${pass} passed, ${failn} failed"
fi
[ $failn -eq 0 ]
