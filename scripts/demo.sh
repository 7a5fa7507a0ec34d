#!/usr/bin/env bash
# The stream worker on a built-in default: a 60 s spoken sample → stsdub with
# the echo STS → out/dubbed.flv, and a table with one row per segment.
#   bash scripts/demo.sh [FILE|rtsp://…|rtmp://…] [STS_URL]
# With no STS_URL the built-in echo STS is started on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet --lib --example worker --example echo_sts

mkdir -p out
input=${1:-}
if [ -z "$input" ]; then
  input=out/sample.mp4
  [ -f "$input" ] || { echo "demo: making the 60 s sample (espeak-ng speech + test video)"; bash scripts/make-sample.sh "$input" 60; }
fi

sts_url=${2:-}
if [ -z "$sts_url" ]; then
  exec 3< <(target/release/examples/echo_sts --port 0 2>out/echo_sts.log)
  echo_pid=$!
  trap 'kill $echo_pid 2>/dev/null || true' EXIT
  read -r line <&3
  sts_url=${line#listening on }
  echo "demo: echo STS at $sts_url (log: out/echo_sts.log)"
fi

target/release/examples/worker --input "$input" --sts-url "$sts_url" --output out/dubbed.flv --print-pipeline
echo "demo: play it with: ffplay out/dubbed.flv"
