#!/usr/bin/env bash
# Instructions per plain-HTTP request (sticky hits, `wrk -t1 -c16 -dDURATION`)
# of one or more builds of the proxy under callgrind: bench/callgrind.sh's
# `hit` case run once per binary (see there for the method).
#
# Usage: bench/hotpath_callgrind.sh [DURATION_SECONDS] BINARY...
#   KEEP_WORK=1 keeps each run's work folder (its callgrind.out.* profile,
#   for callgrind_annotate; the path is printed on stderr).
# Prints per binary: BINARY: N requests, X instructions per request
# Same as: for b in BINARY...; do bench/callgrind.sh "$b" hit 16 DURATION; done
set -euo pipefail
DURATION=${1:-8}
shift || true
[ $# -gt 0 ] || { echo "usage: $0 [DURATION] BINARY..." >&2; exit 1; }
for bin in "$@"; do
    CALLGRIND_TAG=x "$(dirname "$0")/callgrind.sh" "$bin" hit 16 "$DURATION" |
        awk -v b="$bin" '{
            split($2, r, "="); split($3, t, "=")
            printf "%s: %d requests, %.0f instructions per request\n", b, r[2], t[2] / r[2]
        }'
done
