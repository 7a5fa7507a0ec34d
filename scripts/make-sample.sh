#!/usr/bin/env bash
# Makes the built-in sample: spoken words (espeak-ng) over a test video,
# H.264 + AAC-LC 48 kHz stereo in MP4.   usage: make-sample.sh OUT.mp4 [SECONDS]
set -euo pipefail
out=$1
seconds=${2:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
espeak-ng -s 150 -w "$work/speech.wav" \
  "This is the stsdub sample stream. Every six seconds of this audio travel to a speech to speech service and come back dubbed. \
   The quick brown fox jumps over the lazy dog. One, two, three, four, five, six, seven, eight, nine, ten."
ffmpeg -v error -y -f lavfi -i "testsrc2=size=320x240:rate=25" -stream_loop -1 -i "$work/speech.wav" \
  -t "$seconds" -map 0:v -map 1:a \
  -c:v libx264 -preset veryfast -g 50 -pix_fmt yuv420p \
  -c:a aac -b:a 96k -ar 48000 -ac 2 "$work/sample.mp4"
mv "$work/sample.mp4" "$out"
