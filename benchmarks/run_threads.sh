#!/usr/bin/env bash
# Per-tensor overhead against thread count: workload C (10,000 tensors of 1,000 params) with
# 1 thread and with 2, into benchmarks/results/threads-1 and threads-2 (or under the
# directory given).
set -euo pipefail
cd "$(dirname "$0")/.."
root="${1:-benchmarks/results}"
adamkit=".venv/bin/adamkit"
[ -x "$adamkit" ] || adamkit="adamkit"
for threads in 1 2; do
    "$adamkit" bench --workloads C --threads "$threads" --out "$root/threads-$threads"
done
