#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (installing it when missing) and runs each for
# SECONDS (default 60). Not part of the test command: fuzzing is open-ended.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if ! command -v clang++-14 >/dev/null || ! dpkg -s libclang-rt-14-dev >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends clang-14 libclang-rt-14-dev
fi
BUILD=build-fuzz
if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMAILROSTER_FUZZ=ON
fi
cmake --build "$BUILD" -j "$(nproc)" --target smtp_command_fuzzer address_fuzzer csv_fuzzer ldap_entry_fuzzer
for f in smtp_command_fuzzer address_fuzzer csv_fuzzer ldap_entry_fuzzer; do
  mkdir -p "$BUILD/corpus/$f"
  echo "== $f"
  "$BUILD/fuzz/$f" -max_total_time="${SECONDS_EACH:-60}" -max_len=4096 "$BUILD/corpus/$f" 2>&1 | tail -3
done
