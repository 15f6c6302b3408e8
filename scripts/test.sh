#!/usr/bin/env bash
# One command: install packages, check formatting (first: it fails in seconds, not after the
# build), build, run every test, then the fuzz targets briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# playwright-core for the browser tests, pinned by tests/ui/package-lock.json
npm ci --prefix tests/ui --no-audit --no-fund --silent
bash scripts/check-format.sh
bash scripts/build.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j "${JOBS:-$(nproc)}" --timeout 600)
# The parsers' fuzz targets build, and a short run from the seeds finds no crash.
SECONDS_EACH=${FUZZ_SECONDS:-10} bash scripts/fuzz.sh
