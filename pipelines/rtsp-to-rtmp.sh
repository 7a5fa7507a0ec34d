#!/usr/bin/env bash
# The live worker: RTSP (H.264 + AAC) in, dubbed RTMP out. Video is never
# re-encoded; stsdub holds it for its latency, so no queue needs sizing.
#   RTSP_URL=rtsp://… RTMP_URL=rtmp://… STS_URL=http://… pipelines/rtsp-to-rtmp.sh
set -euo pipefail
: "${RTSP_URL:?RTSP_URL=rtsp://host/stream}" "${RTMP_URL:?RTMP_URL=rtmp://host/app/key}"
: "${STS_URL:=http://127.0.0.1:8000}" "${STREAM_ID:=stream}" "${WORKER_ID:=$(hostname)}"
: "${SOURCE_LANGUAGE:=en}" "${TARGET_LANGUAGE:=es}" "${LATENCY_MS:=14500}"
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$(cd "$(dirname "$0")/.." && pwd)/target/release}
exec gst-launch-1.0 -e \
  rtspsrc location="$RTSP_URL" protocols=tcp name=src \
  src. ! rtph264depay ! h264parse ! dub.video_sink \
  src. ! rtpmp4gdepay ! aacparse ! dub.audio_sink \
  stsdub name=dub sts-url="$STS_URL" stream-id="$STREAM_ID" worker-id="$WORKER_ID" \
    source-language="$SOURCE_LANGUAGE" target-language="$TARGET_LANGUAGE" latency="$LATENCY_MS" \
  dub.video_src ! mux.video  dub.audio_src ! mux.audio \
  flvmux name=mux streamable=true ! rtmpsink location="$RTMP_URL"
