#!/usr/bin/env bash
# CSV import into PostgreSQL: ROWS (default 1,000,000) generated users imported by mailroster
# into an empty company on a PostgreSQL server of its own (tests/postgres/pg_fixture.py, on
# 127.0.0.1, durability off as in the tests), then the same file again (no change: must write
# nothing), against PostgreSQL's own bulk load of the same file (psql \copy into a bare table).
# Usage: bench/pg_import.sh [build/mailroster]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-build/mailroster}")
ROWS=${ROWS:-1000000}
WORK=$(mktemp -d /tmp/mailroster-pg-bench-XXXXXX)
chmod 755 "$WORK"
python3 tests/postgres/pg_fixture.py start "$WORK/server.json" >/dev/null
trap 'python3 tests/postgres/pg_fixture.py stop "$WORK/server.json"; rm -rf "$WORK"' EXIT
CONN=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['conninfo'])" "$WORK/server.json")
psql -q "$CONN" -c "CREATE DATABASE bench" -c "CREATE DATABASE plain"
DB="${CONN/dbname=postgres/dbname=bench}"
PLAIN="${CONN/dbname=postgres/dbname=plain}"
python3 bench/users_csv.py "$WORK/users.csv" "$ROWS"
"$BIN" --db "$DB" company add bench >/dev/null
"$BIN" --db "$DB" domain add bench.example --company bench --destination 127.0.0.1:25 >/dev/null
t0=$(date +%s.%N)
/usr/bin/time -f %M -o "$WORK/first.rss" \
  "$BIN" --db "$DB" import csv "$WORK/users.csv" --company bench --json > "$WORK/first.json"
t1=$(date +%s.%N)
/usr/bin/time -f %M -o "$WORK/second.rss" \
  "$BIN" --db "$DB" import csv "$WORK/users.csv" --company bench --json > "$WORK/second.json"
t2=$(date +%s.%N)
psql -q "$PLAIN" -c "CREATE TABLE users(email text, first_name text, surname text, role text, type text, aliases text)" \
  -c "\\copy users FROM '$WORK/users.csv' WITH (FORMAT csv, HEADER true)"
t3=$(date +%s.%N)
python3 - "$WORK" "$ROWS" "$t0" "$t1" "$t2" "$t3" <<'PY'
import json, sys
work, rows = sys.argv[1], int(sys.argv[2])
t0, t1, t2, t3 = map(float, sys.argv[3:7])
def counts(name):
    doc = json.load(open(f"{work}/{name}.json"))
    return {k: doc["counts"][k] for k in ("create", "update", "delete")}
first, again, copy = t1 - t0, t2 - t1, t3 - t2
rss = lambda n: int(open(f"{work}/{n}.rss").read().split()[-1]) // 1024
print(f"rows: {rows} (PostgreSQL on 127.0.0.1)")
print(f"import into an empty company: {first:.2f} s ({rows / first:,.0f} rows/s), "
      f"peak RSS {rss('first')} MiB, {counts('first')}")
print(f"no-change re-import: {again:.2f} s ({rows / again:,.0f} rows/s), "
      f"peak RSS {rss('second')} MiB, {counts('second')}")
print(f"psql \\copy of the same file into a bare table: {copy:.2f} s")
print(f"import / \\copy: {first / copy:.1f}x")
PY
