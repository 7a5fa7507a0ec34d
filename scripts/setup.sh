#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Installs what stsdub needs on Debian 12 when it is missing. Idempotent and
# quiet when everything is there; needs root (or sudo) only to install.
set -euo pipefail

PACKAGES=(
  pkg-config
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-libav
  ffmpeg espeak-ng
  libgstrtspserver-1.0-dev gstreamer1.0-rtsp
  nginx-light libnginx-mod-rtmp
  meson ninja-build
)
# The test suite also checks the alert rules with promtool (Debian ships it
# in the prometheus package; no server is started here),
# makes its speech set with a second synthesizer beside espeak-ng (flite),
# plays the HLS output in a real browser player (hls.js in Debian's
# headless chromium, driven by puppeteer-core, which brings no browser),
# and reads the 708 captions GStreamer's cc708overlay draws with tesseract
# (OCR, with the echo's languages).
[ "${1:-}" = "--tests" ] && PACKAGES+=(prometheus flite chromium tesseract-ocr tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-spa)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The interop tests run peers on python-socketio and Node's socket.io; any
# python3 with venv and any node with npm will do, Debian's if there is none.
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3 python3-venv)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust 1.95 (rustup) and run again" >&2
  exit 1
fi
