#!/usr/bin/env bash
# Every rule on workloads A, B and C (BENCHMARKS.md's tables: A only), with torch's default
# thread count, writing bench.json and bench.md into the directory given (default
# benchmarks/results/all). Extra arguments go to `adamkit bench`, e.g. --threads 1.
# Takes tens of minutes and about 12 GiB of memory at peak (workload B, AMSGrad: five
# contenders each holding params and three state buffers of 124M fp32 values).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-benchmarks/results/all}"
shift $(( $# > 0 ? 1 : 0 ))
adamkit=".venv/bin/adamkit"
[ -x "$adamkit" ] || adamkit="adamkit"
exec "$adamkit" bench --workloads A B C --out "$out" "$@"
