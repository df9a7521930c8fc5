#!/usr/bin/env bash
# Validate every rule file and run every unit test of this suite with promtool.
#
#   usage: check-with-promtool.sh [--promtool PATH] [--extra]
#
# Always: `promtool check rules` on each *.rules.yml and `promtool test rules` on
# each *.test.yml. With --extra (needs python3 with PyYAML) also:
#   suite-report.py --lifecycle   counts, lint (eval times half-way between samples,
#                                 coverage) and the pending/firing/resolved proof;
#   left-open-emulation.py        the alert tests again with Prometheus 3 window edges.
# Exits non-zero if anything fails.
set -u

here="$(cd "$(dirname "$0")" && pwd)"
promtool="promtool"
extra=0
while [ $# -gt 0 ]; do
  case "$1" in
    --promtool) promtool="$2"; shift 2 ;;
    --extra) extra=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

failed=0
cd "$here" || exit 2

for f in *.rules.yml; do
  if out="$("$promtool" check rules "$f" 2>&1)"; then
    echo "check rules  ok      $f"
  else
    echo "check rules  FAILED  $f"
    echo "$out"
    failed=1
  fi
done

for f in *.test.yml; do
  if out="$("$promtool" test rules "$f" 2>&1)"; then
    echo "test rules   ok      $f"
  else
    echo "test rules   FAILED  $f"
    echo "$out"
    failed=1
  fi
done

if [ "$extra" = 1 ]; then
  export PATH="$(dirname "$(command -v "$promtool")"):$PATH"
  python3 suite-report.py --lifecycle || failed=1
  python3 left-open-emulation.py || failed=1
fi

if [ "$failed" = 0 ]; then
  echo "all rule files valid, all tests passed"
else
  echo "FAILURES above" >&2
fi
exit "$failed"
