#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Fuzzes everything stsdub parses from remote bytes with cargo fuzz
# (libFuzzer), one target after another, and prints one line per target:
# executions, coverage, crashes. On stable Rust there is no sanitizer flag
# (-Zsanitizer needs nightly): the targets run with `-s none`, so a crash is
# a panic, an abort or an out-of-bounds access Rust itself catches.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET [RUNS_PER_TARGET]]   # 3600, 10000000
#
# Seeds are in fuzz/seeds/TARGET (real M4A files, Socket.IO packets); the
# growing corpus is kept in fuzz/corpus/TARGET, crashes in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
seconds=${1:-3600}
runs=${2:-10000000}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2
cd fuzz
cargo fuzz build -s none -O
targets=(socketio_packet sts_events m4a_unpack aac_config)
status=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  log="artifacts/$target.log"
  set +e
  cargo fuzz run -s none -O "$target" "corpus/$target" "seeds/$target" -- \
    -runs="$runs" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=1048576 \
    -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  crashes=$(find "artifacts/$target" -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' | wc -l)
  echo "fuzz: $target: $execs executions, coverage $cov, $crashes crashes (exit $rc)"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then status=1; fi
done
exit $status
