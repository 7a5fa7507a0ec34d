#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Dubs an MP4 file (H.264 + AAC) into an FLV file, faster than real time.
#   INPUT=in.mp4 OUTPUT=out.flv STS_URL=http://127.0.0.1:8000 pipelines/file-to-flv.sh
set -euo pipefail
: "${INPUT:?INPUT=file.mp4}" "${OUTPUT:=dubbed.flv}" "${STS_URL:=http://127.0.0.1:8000}"
: "${STREAM_ID:=file}" "${SOURCE_LANGUAGE:=en}" "${TARGET_LANGUAGE:=es}"
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$(cd "$(dirname "$0")/.." && pwd)/target/release}
# The worker's pipeline (stsdub_worker::pipeline::worker; tests/launch_lines.rs checks it).
exec gst-launch-1.0 -e \
  filesrc location="$INPUT" ! qtdemux name=d \
  d.video_0 ! h264parse ! dub.video_sink d.audio_0 ! aacparse ! dub.audio_sink \
  stsdub name=dub sts-url="$STS_URL" stream-id="$STREAM_ID" \
    source-language="$SOURCE_LANGUAGE" target-language="$TARGET_LANGUAGE" \
  dub.video_src ! mux.video dub.audio_src ! mux.audio \
  flvmux name=mux streamable=true ! filesink location="$OUTPUT"
