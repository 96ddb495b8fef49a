#!/usr/bin/env bash
# Failover load test (issue 5): 64 keep-alive clients of sticky traffic through
# the proxy while one of three in-process backends is killed and restarted in
# turn; with fallback=on no request may fail. Prints requests served, failures,
# re-pins and throughput (see docs/health.md for reported figures).
#
# Usage: bench/failover.sh [SECONDS] [PERIOD_SECONDS]   (defaults 20 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
FAILOVER_SECONDS=${1:-20} FAILOVER_PERIOD=${2:-3} \
    cargo test --release --test proxy_failover_load -- --ignored --nocapture
