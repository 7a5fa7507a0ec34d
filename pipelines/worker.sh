#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The live worker: RTSP (H.264 + AAC) in → stsdub → RTMP out. Video is never
# re-encoded and stsdub holds it for its latency: no queue needs sizing.
# The one queue, after flvmux, keeps the RTMP sink's blocking connect and
# writes from stalling the muxer, which would then interleave the first
# frames out of order (measured: 4 of 12 live starts without it, 0 of 12 with).
# SIGINT or SIGTERM stop it cleanly: EOS first, so stsdub sends stream:end
# and the RTMP server gets a complete stream. (Started with `&` by a script,
# it inherits SIGINT ignored, as every such background job does, and bash
# cannot trap it then: stop it with SIGTERM, as kill and Kubernetes do.)
#
# Environment (defaults in brackets):
#   INPUT_URL or RTSP_URL (required): rtsp://, rtmp://, srt:// (caller or ?mode=listener),
#                         udp:// (MPEG-TS), or a .mp4 .mov .mkv .flv .ts file
#   OUTPUT_URL or RTMP_URL (required): rtmp://, srt://, udp:// (MPEG-TS), a .flv .ts .mkv .mp4
#                         file, or HLS: a path ending in .m3u8 (the multivariant playlist, a folder
#                         per rendition beside it; HLS_SEGMENT_S [6], HLS_PLAYLIST_LENGTH [5] live);
#                         with several languages into FLV/RTMP, {lang} in it (one per language)
#   TARGET_LANGUAGES      several languages at once, e.g. es,fr,de (stream ids STREAM_ID-es, …);
#                         KEEP_ORIGINAL [1] (0: no original track)  VIDEO_CODEC [h264] (or h265)
#   Any input but RTSP→RTMP with one language and H.264 runs the worker program
#   (the stsdub-worker program, WORKER_BIN [this checkout's target/release/stsdub-worker]),
#   which builds the same pipeline (stsdub_worker::pipeline) and names a stream it cannot take.
#   STS_URL [http://127.0.0.1:8000]
#   STREAM_ID [stream]    WORKER_ID [hostname]  SOURCE_LANGUAGE [en]  TARGET_LANGUAGE [es]
#   LATENCY_MS [-1: SEGMENT_MS + TIMEOUT_MS + 500]  SEGMENT_MS [6000]  TIMEOUT_MS [8000]
#   SEGMENTATION [fixed]  (or pauses: cut in a pause, MIN_SEGMENT_MS [0: 40 % of SEGMENT_MS] .. SEGMENT_MS)
#   FIT [trim]  (or stretch: speed long dubs up, MAX_STRETCH [1.25])  ORIGINAL_VOLUME [0] (0..1: voice-over)
#   CAPTIONS [off]  (or cea608: each segment's words as CEA-608 in the video, with two
#                         languages CC1 and CC3 in TARGET_LANGUAGES' order; cea708: 708
#                         services 1-4; both: 608 and 708, see docs/users.md "CEA-708")
#   SUBTITLES_DIR         WebVTT and SRT sidecars there, one pair per language (runs the worker program)
#   AUDIO_BITRATE [0: the input's]  (bits/s, when FIT=stretch or ORIGINAL_VOLUME > 0 re-encode the audio)
#   OUTPUT_AUDIO_CODEC [aac]  (or ac3, mp2: every audio track of an MPEG-TS, Matroska or MP4 output
#                         encoded so after stsdub, for deliveries that need the broadcast codec)
#   RTMP_SINK [rtmpsink]  (or rtmp2sink)        RTSP_LATENCY_MS [200] (rtspsrc jitter buffer)
#   RTSP_BUFFER_MODE [slave] rtspsrc buffer-mode: slave (sender clock unknown), synced (same clock)
#   GST_LAUNCH_ARGS       extra gst-launch-1.0 options, e.g. -m to print bus messages
#   GST_PLUGIN_PATH       where libgststsdub.so is [this checkout's target/release]
#   STSDUB_AUTH_TOKEN     the STS token (read by stsdub itself, never on a command line)
#   STSDUB_METRICS_ADDRESS  serve Prometheus /metrics, /healthz and /readyz there (e.g. 0.0.0.0:9464); the
#                         stsdub-bus-errors tracer is then enabled to count every element's errors
set -euo pipefail
INPUT_URL=${INPUT_URL:-${RTSP_URL:-}}
OUTPUT_URL=${OUTPUT_URL:-${RTMP_URL:-}}
: "${INPUT_URL:?INPUT_URL (or RTSP_URL)=rtsp://host/stream, srt://…, udp://… or a file is required}"
: "${OUTPUT_URL:?OUTPUT_URL (or RTMP_URL)=rtmp://host/app/key, srt://…, udp://… or a file is required}"
: "${TARGET_LANGUAGES:=}" "${KEEP_ORIGINAL:=1}" "${VIDEO_CODEC:=h264}"
: "${STS_URL:=http://127.0.0.1:8000}" "${STREAM_ID:=stream}" "${WORKER_ID:=$(hostname)}"
: "${SOURCE_LANGUAGE:=en}" "${TARGET_LANGUAGE:=es}"
: "${LATENCY_MS:=-1}" "${SEGMENT_MS:=6000}" "${TIMEOUT_MS:=8000}"
: "${SEGMENTATION:=fixed}" "${MIN_SEGMENT_MS:=0}"
: "${FIT:=trim}" "${MAX_STRETCH:=1.25}" "${ORIGINAL_VOLUME:=0}" "${AUDIO_BITRATE:=0}" "${CAPTIONS:=off}"
: "${RTMP_SINK:=rtmpsink}" "${RTSP_LATENCY_MS:=200}" "${RTSP_BUFFER_MODE:=slave}" "${GST_LAUNCH_ARGS:=}"
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$(cd "$(dirname "$0")/.." && pwd)/target/release}
if [ -n "${STSDUB_METRICS_ADDRESS:-}" ]; then
  export STSDUB_METRICS_ADDRESS
  export GST_TRACERS="${GST_TRACERS:+$GST_TRACERS;}stsdub-bus-errors"
fi

properties="worker-id=\"$WORKER_ID\" source-language=\"$SOURCE_LANGUAGE\" \
  latency=$LATENCY_MS segment-duration=$SEGMENT_MS timeout=$TIMEOUT_MS \
  segmentation=$SEGMENTATION min-segment-duration=$MIN_SEGMENT_MS \
  fit=$FIT max-stretch=$MAX_STRETCH original-volume=$ORIGINAL_VOLUME bitrate=$AUDIO_BITRATE"
if [[ -n $TARGET_LANGUAGES || -n ${SUBTITLES_DIR:-} || -n ${OUTPUT_AUDIO_CODEC:-} || $INPUT_URL != rtsp://* || $OUTPUT_URL != rtmp://* || $VIDEO_CODEC != h264 ]]; then
  worker=${WORKER_BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release/stsdub-worker}
  [ -x "$worker" ] || { echo "worker.sh: $worker is missing: cargo build --release --bin stsdub-worker" >&2; exit 2; }
  languages=()
  [ -n "$TARGET_LANGUAGES" ] && languages=(--target-languages "$TARGET_LANGUAGES" --keep-original "$KEEP_ORIGINAL")
  [ -n "${SUBTITLES_DIR:-}" ] && languages+=(--subtitles-dir "$SUBTITLES_DIR")
  [ -n "${HLS_SEGMENT_S:-}" ] && languages+=(--hls-segment-duration "$HLS_SEGMENT_S")
  [ -n "${HLS_PLAYLIST_LENGTH:-}" ] && languages+=(--hls-playlist-length "$HLS_PLAYLIST_LENGTH")
  [ -n "${OUTPUT_AUDIO_CODEC:-}" ] && languages+=(--output-audio-codec "$OUTPUT_AUDIO_CODEC")
  # The worker program ends the stream with EOS on SIGINT or SIGTERM itself.
  exec "$worker" --input "$INPUT_URL" --output "$OUTPUT_URL" --sts-url "$STS_URL" \
    --stream-id "$STREAM_ID" --target-language "$TARGET_LANGUAGE" --source-language "$SOURCE_LANGUAGE" \
    --video-codec "$VIDEO_CODEC" --captions "$CAPTIONS" "${languages[@]}" --stsdub-properties "$properties" --print-pipeline
fi
RTSP_URL=$INPUT_URL RTMP_URL=$OUTPUT_URL

# The worker's pipeline (stsdub_worker::pipeline::worker; tests/launch_lines.rs checks it).
# Job control: a background job of a non-interactive shell would otherwise
# ignore SIGINT, which gst-launch-1.0 -e needs to see to send EOS.
set -m
# shellcheck disable=SC2086
gst-launch-1.0 -e $GST_LAUNCH_ARGS \
  rtspsrc location="$RTSP_URL" protocols=tcp latency="$RTSP_LATENCY_MS" buffer-mode="$RTSP_BUFFER_MODE" name=src \
  src. ! rtph264depay ! h264parse ! dub.video_sink \
  src. ! rtpmp4gdepay ! aacparse ! dub.audio_sink \
  stsdub name=dub sts-url="$STS_URL" stream-id="$STREAM_ID" worker-id="$WORKER_ID" \
    source-language="$SOURCE_LANGUAGE" target-language="$TARGET_LANGUAGE" \
    latency="$LATENCY_MS" segment-duration="$SEGMENT_MS" timeout="$TIMEOUT_MS" \
    segmentation="$SEGMENTATION" min-segment-duration="$MIN_SEGMENT_MS" \
    fit="$FIT" max-stretch="$MAX_STRETCH" original-volume="$ORIGINAL_VOLUME" bitrate="$AUDIO_BITRATE" \
    captions="$CAPTIONS" \
  dub.video_src ! mux.video  dub.audio_src ! mux.audio \
  flvmux name=mux streamable=true ! queue ! "$RTMP_SINK" location="$RTMP_URL" &
launch=$!
# The end is waited for at most drain_s: stsdub's last segment and answer
# (or its latency), its session's end (3 s), the jitter buffer, and 5 s for
# the sinks. GStreamer 1.22's rtpjitterbuffer sometimes keeps an RTSP track's
# EOS back for ever (2 of 80 plain rtspsrc pipelines stopped with -e, no
# stsdub in them); a second SIGINT makes gst-launch-1.0 stop without it, and
# SIGKILL follows if even its teardown hangs.
answer_ms=$((SEGMENT_MS + TIMEOUT_MS + 500))
drain_s=$(( ((LATENCY_MS > answer_ms ? LATENCY_MS : answer_ms) + RTSP_LATENCY_MS) / 1000 + 3 + 5 ))
stop_if_stuck() {
  sleep "$drain_s"
  kill -0 "$launch" 2>/dev/null || return 0
  echo "worker.sh: the stream did not end within ${drain_s} s of the interrupt (a source kept its end back); stopping it" >&2
  kill -INT "$launch" 2>/dev/null || return 0
  sleep 10
  kill -KILL "$launch" 2>/dev/null || true
}
watchdog=
# gst-launch-1.0 -e turns SIGINT into EOS; give SIGTERM the same meaning.
trap 'kill -INT "$launch" 2>/dev/null || true; [ -n "$watchdog" ] || { stop_if_stuck & watchdog=$!; }' INT TERM
status=0
wait "$launch" || status=$?
# A trapped signal interrupts the first wait; wait again for the clean stop.
if kill -0 "$launch" 2>/dev/null; then
  status=0
  wait "$launch" || status=$?
fi
# The watchdog is a job of its own (set -m): its group goes with its sleep.
[ -z "$watchdog" ] || kill -- -"$watchdog" 2>/dev/null || true
exit "$status"
