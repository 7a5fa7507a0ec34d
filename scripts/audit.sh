#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# cargo audit of the plugin's and the fuzz targets' lock files against the
# RustSec advisory database snapshot beside the checkout (no network):
#   bash scripts/audit.sh [ADVISORY_DB]        # default ../shared/advisory-db
# A vulnerability fails it; so does an unmaintained or yanked crate warning.
set -euo pipefail
cd "$(dirname "$0")/.."
db=$(realpath -m "${1:-${STSDUB_ADVISORY_DB:-../shared/advisory-db}}")
if [ ! -d "$db" ]; then
  echo "audit: no advisory database at $db: cargo audit NOT run" >&2
  exit 0
fi
command -v cargo-audit >/dev/null 2>&1 || cargo install cargo-audit --locked --quiet
for lock in . fuzz; do
  (cd "$lock" && cargo audit --db "$db" --no-fetch --deny warnings)
done
echo "audit: $(ls "$db/crates" | wc -l) crates with advisories in $db; the plugin's and fuzz/'s lock files are clean"
