#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The stream worker on a built-in default, one row per segment.
#   bash scripts/demo.sh [FILE|rtsp://…|rtmp://…|srt://…|udp://…] [STS_URL] [OUTPUT]
#       a 60 s spoken sample (or yours: .mp4 .mov .mkv .flv .ts) → stsdub → echo STS →
#       out/dubbed.flv (or OUTPUT: .ts .mkv .mp4 .flv, rtmp://, srt://, udp://, or HLS:
#       out/hls/master.m3u8, a rendition per language);
#       TARGET_LANGUAGES=es,fr,de dubs into each (into .ts/.mkv/.mp4: one track each)
#       CAPTIONS=cea608 puts each segment's words in the video as CEA-608 captions
#   bash scripts/demo.sh --live [SECONDS]
#       live: built-in RTSP server (gst-rtsp-server) → stsdub → echo STS →
#       local nginx-rtmp, recorded to out/nginx/demo.flv; prints the connect
#       time, the latency and the A/V sync measured on the recording.
# With no STS_URL the built-in echo STS is started on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet --lib --bin stsdub-worker --example echo_sts --example rtsp_source --example measure_sync
mkdir -p out
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

# Starts a helper that prints "listening on URL" first; sets $url.
start() {
  local log=$1; shift
  exec {fd}< <("$@" 2>"$log")
  pids+=($!)
  read -r line <&"$fd"
  url=${line#listening on }
}

if [ "${1:-}" = "--live" ]; then
  seconds=${2:-60}
  sample=out/marks-${seconds}s.mp4
  [ -f "$sample" ] || { echo "demo: making a ${seconds} s sample with sync marks"; bash scripts/make-sample.sh "$sample" "$seconds" marks; }
  # The identity echo keeps the sync marks' beeps, so sync can be measured.
  start out/echo_sts.log target/release/examples/echo_sts --port 0 --transform identity; sts_url=$url
  start out/rtsp_source.log target/release/examples/rtsp_source --file "$sample"; rtsp_url=$url
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rm -rf out/nginx && mkdir -p out/nginx
  sed "s#@PORT@#$port#; s#@DIR@#$PWD/out/nginx#g" tests/nginx/rtmp.conf.in > out/nginx/nginx.conf
  nginx -c "$PWD/out/nginx/nginx.conf" -p "$PWD/out/nginx" -e "$PWD/out/nginx/error.log" &
  pids+=($!)
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  echo "demo: $rtsp_url → stsdub (echo STS $sts_url) → rtmp://127.0.0.1:$port/live/demo"
  target/release/stsdub-worker --input "$rtsp_url" --sts-url "$sts_url" \
    --output "rtmp://127.0.0.1:$port/live/demo" --stream-id demo
  kill "${pids[-1]}" 2>/dev/null || true; wait "${pids[-1]}" 2>/dev/null || true
  echo "demo: A/V sync on the recording out/nginx/demo.flv (flash vs beep, every 5 s):"
  target/release/examples/measure_sync out/nginx/demo.flv
  exit 0
fi

input=${1:-}
if [ -z "$input" ]; then
  input=out/sample.mp4
  [ -f "$input" ] || { echo "demo: making the 60 s sample (espeak-ng speech + test video)"; bash scripts/make-sample.sh "$input" 60; }
fi
sts_url=${2:-}
if [ -z "$sts_url" ]; then
  start out/echo_sts.log target/release/examples/echo_sts --port 0
  sts_url=$url
  echo "demo: echo STS at $sts_url (log: out/echo_sts.log)"
fi
output=${3:-out/dubbed.flv}
languages=()
[ -n "${TARGET_LANGUAGES:-}" ] && languages=(--target-languages "$TARGET_LANGUAGES")
target/release/stsdub-worker --input "$input" --sts-url "$sts_url" --output "$output" \
  --video-codec "${VIDEO_CODEC:-h264}" --captions "${CAPTIONS:-off}" "${languages[@]}" --print-pipeline
if [ -f "$output" ]; then
  echo "demo: the tracks of $output:"
  ffprobe -hide_banner "$output" 2>&1 | grep -E "^ *(Input|Stream)"
  echo "demo: play it with: ffplay $output"
  if [ "${CAPTIONS:-off}" != off ]; then
    echo "demo: with its captions: ffplay -f lavfi \"movie=$output[out0+subcc]\""
  fi
fi
