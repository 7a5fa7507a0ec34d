# The stream worker as a container (Debian 12): builds the plugin, the worker
# program and the multi-stream program, runs pipelines/worker.sh with its
# parameters from the environment (deploy/kubernetes runs this image):
#   docker build -t stsdub .
#   docker run --rm -e RTSP_URL=rtsp://… -e RTMP_URL=rtmp://… -e STS_URL=http://… stsdub
# (not built in this repository's CI: its machines have no container engine)
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --lib --bin stsdub-worker --bin stsdub-multi-stream

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
      gstreamer1.0-plugins-bad gstreamer1.0-libav ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/libgststsdub.so /usr/lib/x86_64-linux-gnu/gstreamer-1.0/
COPY --from=build /src/target/release/stsdub-worker /usr/local/bin/stsdub-worker-program
COPY --from=build /src/target/release/stsdub-multi-stream /usr/local/bin/stsdub-multi-stream
COPY pipelines/worker.sh /usr/local/bin/stsdub-worker
# Two malloc arenas instead of glibc's eight per core: a worker's threads
# free what others allocated, and with the default the freed memory stays
# resident (soak, 300 passes: RSS 88 -> 115 MiB with a heap that never
# exceeds 33 MB in use; with two arenas 74 -> 77 MiB). docs/developers.md, "Soak".
ENV GST_PLUGIN_PATH=/usr/lib/x86_64-linux-gnu/gstreamer-1.0 \
    WORKER_BIN=/usr/local/bin/stsdub-worker-program \
    GST_REGISTRY=/tmp/gstreamer-registry.bin \
    MALLOC_ARENA_MAX=2
# Not root: the Kubernetes manifests require it (runAsNonRoot); /tmp is the
# one writable place (GStreamer's registry cache).
USER 65532:65532
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/stsdub-worker"]
