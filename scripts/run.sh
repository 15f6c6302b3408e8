#!/usr/bin/env bash
# One command: install packages, build, and run the gateway on its embedded default
# (SQLite database ./mailroster.db, no configuration file). Extra arguments go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
exec build/mailroster serve "$@"
