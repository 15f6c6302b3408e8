#!/usr/bin/env bash
# SMTP Discovery under mail flow: mailroster serve relays mail to ADDRESSES new addresses of a
# company (each ROUNDS times, SESSIONS clients at once) to a company server that knows them
# (tests/integration/fake_mta.py, on 127.0.0.1), and counts each clean delivery for
# discovery. Prints the delivery rate and how long until every count was written.
# DATABASE=postgres runs it on a PostgreSQL server of its own (tests/postgres/pg_fixture.py).
# Usage: bench/discovery_flow.sh [build/mailroster]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-build/mailroster}")
ADDRESSES=${ADDRESSES:-20000}
ROUNDS=${ROUNDS:-2}
SESSIONS=${SESSIONS:-8}
WORK=$(mktemp -d /tmp/mailroster-discovery-bench-XXXXXX)
chmod 0755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -f "$WORK/pg.json" ]; then python3 tests/postgres/pg_fixture.py stop "$WORK/pg.json" || true; fi
  sleep 0.5
  rm -rf "$WORK"
}
trap cleanup EXIT
source bench/common.sh

MTA=$(free_port)
python3 tests/integration/fake_mta.py --port "$MTA" --accept-prefix d --no-spool >"$WORK/mta.log" 2>&1 &
PIDS+=($!)
wait_port "$MTA"
bench_database
"$BIN" --db "$DB" company add bench >/dev/null
"$BIN" --db "$DB" domain add bench.example --company bench --destination 127.0.0.1:"$MTA" >/dev/null
"$BIN" --db "$DB" discovery set --company bench enabled=true inbound_threshold="$ROUNDS" >/dev/null
SMTP=$(free_port)
ADMIN=$(free_port)
cat > "$WORK/mailroster.toml" <<TOML
[database]
$DB_KEY = "$DB"
[secrets]
key_file = "$WORK/secrets.key"
[admin]
listen = "127.0.0.1:$ADMIN"
[smtp]
inbound_listen = "127.0.0.1:$SMTP"
hostname = "mailroster.bench"
[outbound]
listen = "127.0.0.1:$(free_port)"
[log]
level = "warn"
TOML
"$BIN" --config "$WORK/mailroster.toml" serve 2>"$WORK/mailroster.log" &
PIDS+=($!)
wait_port "$SMTP" || { cat "$WORK/mailroster.log" >&2; exit 1; }
wait_port "$ADMIN"
echo "database: ${DATABASE:-sqlite}"
python3 bench/discovery_flow.py "$SMTP" "$ADMIN" "$ADDRESSES" "$ROUNDS" "$SESSIONS"
if grep -q "error" "$WORK/mailroster.log"; then
  echo "mailroster logged errors:"
  grep "error" "$WORK/mailroster.log" | head -5
  exit 1
fi
