#!/usr/bin/env bash
# Installs every Debian 12 package mailroster needs to build, run and test.
# Idempotent: when everything is already installed it does nothing (and needs no root).
set -euo pipefail

PACKAGES=(
  # toolchain (clang and its sanitizer runtime: the libFuzzer targets, scripts/fuzz.sh)
  g++ cmake ninja-build pkg-config git ca-certificates curl python3 clang-format
  clang-14 libclang-rt-14-dev
  # libraries
  libboost1.74-dev libssl-dev libsqlite3-dev sqlite3 libsodium-dev
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libtomlplusplus-dev libldap-dev
  libcurl4-openssl-dev libabsl-dev libpq-dev libidn2-dev libsystemd-dev
  # tests and benchmarks: real SMTP peers (swaks with TLS, Postfix's smtp-source/smtp-sink)
  libgtest-dev libgmock-dev libbenchmark-dev openssl
  swaks libnet-ssleay-perl libio-socket-ssl-perl postfix
  # a real OpenLDAP server for the directory-sync tests; GNU time for benchmark memory figures
  slapd ldap-utils time
  # a real PostgreSQL server for the store tests (tests/postgres/pg_fixture.py starts its own)
  postgresql-15
  # a real rspamd for the content-scoring tests (tests/rspamd/rspamd_fixture.py starts its own)
  rspamd
  # a real HAProxy in front of the gateway for the PROXY protocol tests (started by the test)
  haproxy
  # systemd-analyze, to check the shipped unit file (packaging/mailroster.service)
  systemd
  # browser tests of the web UI: Debian's Chromium, driven by playwright-core from npm
  chromium nodejs
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# npm: Debian's package, unless a Node.js that brings its own npm is installed.
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Postfix is installed for its tools and for private benchmark instances only: never
# configure or start the system instance.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
# slapd likewise: the tests start their own slapd on a loopback port; no system directory.
echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections
# PostgreSQL likewise: the tests make and start their own cluster; no system "main" cluster.
$SUDO mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/mailroster.conf >/dev/null
# No package's own service is started (the system rspamd would fetch its maps from the
# Internet; the system haproxy would listen on its own): Debian's policy-rc.d convention, for the duration of this install only.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
