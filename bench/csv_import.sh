#!/usr/bin/env bash
# CSV import benchmark: ROWS (default 1,000,000) generated users imported into an empty
# company, then the same file again (no change: must write nothing), against the time of
# sqlite3's own `.import` of the same file into a bare table for the ratio.
# Usage: bench/csv_import.sh [build/mailroster]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-build/mailroster}")
ROWS=${ROWS:-1000000}
WORK=$(mktemp -d /tmp/mailroster-csv-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
python3 - "$WORK/users.csv" "$ROWS" <<'PY'
import sys
path, rows = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("email,first_name,surname,role,type,aliases\n")
    for i in range(rows):
        f.write(f"user{i}@bench.example,First{i},Last{i},silent_user,user,\n")
PY
DB="$WORK/m.db"
"$BIN" --db "$DB" company add bench >/dev/null
"$BIN" --db "$DB" domain add bench.example --company bench --destination 127.0.0.1:25 >/dev/null
secs() { python3 -c "import sys,time; print(f'{float(sys.argv[1]):.2f}')" "$1"; }
t0=$(date +%s.%N)
/usr/bin/time -f %M -o "$WORK/first.rss" \
  "$BIN" --db "$DB" import csv "$WORK/users.csv" --company bench --json > "$WORK/first.json"
t1=$(date +%s.%N)
/usr/bin/time -f %M -o "$WORK/second.rss" \
  "$BIN" --db "$DB" import csv "$WORK/users.csv" --company bench --json > "$WORK/second.json"
t2=$(date +%s.%N)
sqlite3 "$WORK/plain.db" ".import --csv $WORK/users.csv users"
t3=$(date +%s.%N)
python3 - "$ROWS" "$t0" "$t1" "$t2" "$t3" "$WORK/first.json" "$WORK/second.json" \
  "$(cat "$WORK/first.rss")" "$(cat "$WORK/second.rss")" <<'PY'
import json, sys
rows = int(sys.argv[1]); t0, t1, t2, t3 = map(float, sys.argv[2:6])
first, second = json.load(open(sys.argv[6])), json.load(open(sys.argv[7]))
rss1, rss2 = int(sys.argv[8]) // 1024, int(sys.argv[9]) // 1024
imp, re, sq = t1 - t0, t2 - t1, t3 - t2
print(f"csv import of {rows} rows: {imp:.1f} s ({rows/imp:,.0f} rows/s), created {first['counts']['create']}, peak RSS {rss1} MiB")
print(f"no-change re-import: {re:.1f} s ({rows/re:,.0f} rows/s), writes: create {second['counts']['create']}, update {second['counts']['update']}, delete {second['counts']['delete']}, peak RSS {rss2} MiB")
print(f"sqlite3 .import of the same file: {sq:.1f} s; import/sqlite3 = {imp/sq:.1f}x")
PY
