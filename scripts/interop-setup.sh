#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Installs the independent peers of the interop tests from the registries:
# python-socketio, a WebVTT parser, an SCTE-35 parser and an HLS playlist parser (in a venv under
# target/), and Node's socket.io, hls.js and puppeteer-core (the browser
# player of tests/hls.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/interop-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import socketio, aiohttp, webvtt, threefive, m3u8" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
fi
if [ ! -d tests/interop/node_modules/socket.io ] || [ ! -d tests/interop/node_modules/hls.js ] \
  || [ ! -d tests/interop/node_modules/puppeteer-core ]; then
  (cd tests/interop && npm ci --no-audit --no-fund --silent)
fi
