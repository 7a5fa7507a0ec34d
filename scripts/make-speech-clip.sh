#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Makes a news-style speech clip over a noise bed, for testing where
# segments are cut, and keeps the clean speech to know where the pauses are.
#   make-speech-clip.sh OUT.mp4 [SECONDS] [BED_DB]
# OUT.mp4:        H.264 test video + AAC-LC 48 kHz stereo: speech + bed
# OUT.clean.wav:  the same speech alone, 48 kHz mono, sample-aligned
# BED_DB (default 15): how far the pink-noise bed sits below the voice (RMS).
# A different voice, speed and text from make-sample.sh's.
set -euo pipefail
out=$1
seconds=${2:-60}
bed_db=${3:-15}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
espeak-ng -v en-us -s 165 -p 40 -w "$work/voice.wav" \
  "Good evening. Here is the news at six. Heavy rain has closed two bridges across the river, \
   and the city council says they will stay shut until Friday. In sport, the home side won the \
   final by three goals to one, after a late penalty in front of a crowd of forty thousand. \
   Markets were calm today, with shares in energy companies slightly higher. \
   Travel now: expect delays on the northern line this weekend, while engineers replace the signals. \
   And finally, the weather: cloudy tonight, with sunny spells tomorrow afternoon."
# The clean speech, looped to length, at 48 kHz mono.
ffmpeg -v error -y -stream_loop -1 -i "$work/voice.wav" -t "$seconds" -ar 48000 -ac 1 \
  -c:a pcm_s16le "$work/clean.wav"
# RMS of the voice while it speaks: volumedetect's mean over the clip's
# non-silent part is close enough (espeak's pauses are digital silence).
voice_db=$(ffmpeg -hide_banner -nostats -i "$work/clean.wav" \
  -af "silenceremove=stop_periods=-1:stop_duration=0.02:stop_threshold=-60dB,volumedetect" \
  -f null - 2>&1 | sed -n 's/.*mean_volume: \(-\?[0-9.]*\) dB/\1/p')
bed_target=$(awk -v v="$voice_db" -v b="$bed_db" 'BEGIN { print v - b }')
ffmpeg -v error -y -f lavfi -i "anoisesrc=color=pink:amplitude=0.5:seed=7:sample_rate=48000:duration=$seconds" \
  -ac 1 "$work/noise-raw.wav"
noise_db=$(ffmpeg -hide_banner -nostats -i "$work/noise-raw.wav" -af volumedetect -f null - 2>&1 \
  | sed -n 's/.*mean_volume: \(-\?[0-9.]*\) dB/\1/p')
gain=$(awk -v t="$bed_target" -v n="$noise_db" 'BEGIN { print t - n }')
ffmpeg -v error -y -i "$work/clean.wav" -i "$work/noise-raw.wav" \
  -filter_complex "[1:a]volume=${gain}dB[bed];[0:a][bed]amix=inputs=2:normalize=0,aformat=channel_layouts=stereo[a]" \
  -f lavfi -i "testsrc2=size=320x240:rate=25" \
  -map 2:v -map "[a]" -t "$seconds" \
  -c:v libx264 -preset veryfast -g 50 -bf 0 -pix_fmt yuv420p -c:a aac -b:a 96k -ar 48000 \
  "$work/clip.mp4"
mv "$work/clean.wav" "${out%.mp4}.clean.wav"
mv "$work/clip.mp4" "$out"
echo "voice ${voice_db} dB, bed ${bed_target} dB" >&2
