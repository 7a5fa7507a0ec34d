#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Makes a sample stream, H.264 + AAC-LC 48 kHz stereo in MP4.
#   make-sample.sh OUT.mp4 [SECONDS] [speech|marks]
# speech (default): spoken words (espeak-ng) over a test video.
# marks: sync marks, a one-frame white flash and a 100 ms 1 kHz beep at the
#        same instants every 5 s, for measuring A/V sync downstream.
set -euo pipefail
out=$1
seconds=${2:-60}
kind=${3:-speech}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# No B-frames: RTP carries no DTS, and after rtph264depay B-frames reach FLV
# with wrong timestamps whether stsdub is there or not (see docs/users.md, "Known limits of live sources").
video_codec=(-c:v libx264 -preset veryfast -g 50 -bf 0 -pix_fmt yuv420p)
audio_codec=(-c:a aac -b:a 96k -ar 48000 -ac 2)
case "$kind" in
  speech)
    espeak-ng -s 150 -w "$work/speech.wav" \
      "This is the stsdub sample stream. Every six seconds of this audio travel to a speech to speech service and come back dubbed. \
       The quick brown fox jumps over the lazy dog. One, two, three, four, five, six, seven, eight, nine, ten."
    ffmpeg -v error -y -f lavfi -i "testsrc2=size=320x240:rate=25" -stream_loop -1 -i "$work/speech.wav" \
      -t "$seconds" -map 0:v -map 1:a "${video_codec[@]}" "${audio_codec[@]}" "$work/sample.mp4"
    ;;
  marks)
    ffmpeg -v error -y \
      -f lavfi -i "color=c=gray:s=320x240:r=25,drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='lt(mod(t,5),0.04)'" \
      -f lavfi -i "aevalsrc='0.8*sin(2*PI*1000*t)*lt(mod(t,5),0.1)':s=48000:c=stereo" \
      -t "$seconds" -map 0:v -map 1:a "${video_codec[@]}" "${audio_codec[@]}" "$work/sample.mp4"
    ;;
  *) echo "make-sample.sh: unknown kind $kind (speech, marks)" >&2; exit 2 ;;
esac
mv "$work/sample.mp4" "$out"
