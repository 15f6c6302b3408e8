#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS_EACH (default 60) from the
# committed seeds (fuzz/seeds/) and what earlier runs found (build-fuzz/corpus/). The test
# command runs it for a few seconds each, so that the targets keep building and a shallow crash
# fails the tests; longer runs are open-ended, by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh  # clang-14 and libclang-rt-14-dev among them
BUILD=build-fuzz
if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMAILROSTER_FUZZ=ON
fi
cmake --build "$BUILD" -j "$(nproc)" --target smtp_command_fuzzer address_fuzzer csv_fuzzer ldap_entry_fuzzer score_fuzzer
for f in smtp_command_fuzzer address_fuzzer csv_fuzzer ldap_entry_fuzzer score_fuzzer; do
  mkdir -p "$BUILD/corpus/$f"
  echo "== $f"
  # New inputs go to the first directory; the committed seeds (fuzz/seeds/) are read too.
  "$BUILD/fuzz/$f" -max_total_time="${SECONDS_EACH:-60}" -max_len=4096 "$BUILD/corpus/$f" \
    "fuzz/seeds/$f" 2>&1 | tail -3
done
