#!/usr/bin/env bash
# Instructions per request of a proxy build under callgrind with a plain
# `proxy_pass` location to a keep-alive upstream, `wrk -t1 -c16 -d8s` after a
# 2 s warm-up: bench/callgrind.sh's `plain` case (see there for the method).
#
# Usage: bench/callgrind_request.sh BIN TAG ["SERVER-LEVEL DIRECTIVES"]
# Prints: TAG requests=N Ir=TOTAL per_request=IR/N
# Same as: CALLGRIND_TAG=TAG CALLGRIND_SERVER="DIRECTIVES" bench/callgrind.sh BIN plain 16 8
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BIN TAG [\"SERVER-LEVEL DIRECTIVES\"]" >&2; exit 2; }
CALLGRIND_TAG=$2 CALLGRIND_SERVER=${3:-} exec "$(dirname "$0")/callgrind.sh" "$1" plain 16 8
