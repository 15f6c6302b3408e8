#!/usr/bin/env bash
# CSV import benchmark: ROWS (default 1,000,000) generated users imported into an empty
# company, then the same file again (no change: must write nothing), against the time of
# sqlite3's own `.import` of the same file into a bare table for the ratio.
# Then ALIAS_ROWS (default 100,000) users with two aliases each, imported into a second empty
# company: directories give most users aliases, which take another path than users.
# Last, every user of the million deleted by a forced --delete-missing import.
# Usage: bench/csv_import.sh [build/mailroster]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-build/mailroster}")
ROWS=${ROWS:-1000000}
ALIAS_ROWS=${ALIAS_ROWS:-100000}
WORK=$(mktemp -d /tmp/mailroster-csv-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
python3 bench/users_csv.py "$WORK/users.csv" "$ROWS"
python3 bench/users_csv.py "$WORK/aliases.csv" "$ALIAS_ROWS" alias.example --aliases
DB="$WORK/m.db"
"$BIN" --db "$DB" company add bench >/dev/null
"$BIN" --db "$DB" domain add bench.example --company bench --destination 127.0.0.1:25 >/dev/null
ADB="$WORK/aliases.db"
"$BIN" --db "$ADB" company add aliases >/dev/null
"$BIN" --db "$ADB" domain add alias.example --company aliases --destination 127.0.0.1:25 >/dev/null
cp "$DB" "$WORK/floor.db"  # the same empty schema, for the floor below
t0=$(date +%s.%N)
/usr/bin/time -f %M -o "$WORK/first.rss" \
  "$BIN" --db "$DB" import csv "$WORK/users.csv" --company bench --json > "$WORK/first.json"
t1=$(date +%s.%N)
/usr/bin/time -f %M -o "$WORK/second.rss" \
  "$BIN" --db "$DB" import csv "$WORK/users.csv" --company bench --json > "$WORK/second.json"
t2=$(date +%s.%N)
sqlite3 "$WORK/plain.db" ".import --csv $WORK/users.csv users"
t3=$(date +%s.%N)
# Listing the imported company, as an administrator would after an import.
l0=$(date +%s.%N)
/usr/bin/time -f %M -o "$WORK/list.rss" \
  "$BIN" --db "$DB" user list --company bench --json > "$WORK/list.json"
l1=$(date +%s.%N)
LISTED=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$WORK/list.json")
# The floor: what SQLite alone needs to write the same users into mailroster's schema (users,
# its indexes and address claims, one audit event each, as mailroster writes them), from rows
# already parsed and checked.
sqlite3 "$WORK/floor.db" ".import --csv $WORK/users.csv raw"
t4=$(date +%s.%N)
sqlite3 "$WORK/floor.db" <<'SQL'
PRAGMA cache_size = -16384;  -- as mailroster's connections
PRAGMA synchronous = NORMAL;
BEGIN;
INSERT INTO users(company_id, domain_id, address, address_key, first_name, surname, role, source,
  source_id, created_at, updated_at)
  SELECT 1, 1, email, lower(email), first_name, surname, role, 'csv', '', 0, 0 FROM raw
  ORDER BY lower(email);
INSERT INTO audit_events(at, company_id, actor, action, object, after)
  SELECT 0, 1, 'sync:csv', 'user.add', address, json_object('first_name', first_name, 'id', id,
  'role', role, 'source', source, 'source_id', source_id, 'surname', surname) FROM users
  ORDER BY id;
COMMIT;
SQL
t5=$(date +%s.%N)
python3 - "$ROWS" "$t0" "$t1" "$t2" "$t3" "$WORK/first.json" "$WORK/second.json" \
  "$(cat "$WORK/first.rss")" "$(cat "$WORK/second.rss")" "$t4" "$t5" "$l0" "$l1" "$LISTED" \
  "$(cat "$WORK/list.rss")" <<'PY'
import json, sys
rows = int(sys.argv[1]); t0, t1, t2, t3 = map(float, sys.argv[2:6])
first, second = json.load(open(sys.argv[6])), json.load(open(sys.argv[7]))
rss1, rss2 = int(sys.argv[8]) // 1024, int(sys.argv[9]) // 1024
t4, t5 = float(sys.argv[10]), float(sys.argv[11])
imp, re, sq = t1 - t0, t2 - t1, t3 - t2
print(f"csv import of {rows} rows: {imp:.1f} s ({rows/imp:,.0f} rows/s), created {first['counts']['create']}, peak RSS {rss1} MiB")
print(f"no-change re-import: {re:.1f} s ({rows/re:,.0f} rows/s), writes: create {second['counts']['create']}, update {second['counts']['update']}, delete {second['counts']['delete']}, peak RSS {rss2} MiB")
l0, l1, listed, lrss = float(sys.argv[12]), float(sys.argv[13]), int(sys.argv[14]), int(sys.argv[15]) // 1024
print(f"user list --company --json of the imported company: {l1-l0:.1f} s, {listed} users, peak RSS {lrss} MiB")
print(f"sqlite3 .import of the same file: {sq:.1f} s; import/sqlite3 = {imp/sq:.1f}x")
floor = t5 - t4
print(f"floor: SQLite's own INSERT ... SELECT of the parsed rows into the same schema: {floor:.1f} s "
      f"({floor/sq:.1f}x .import); import/floor = {imp/floor:.1f}x")
PY

a0=$(date +%s.%N)
"$BIN" --db "$ADB" import csv "$WORK/aliases.csv" --company aliases --json > "$WORK/a1.json"
a1=$(date +%s.%N)
"$BIN" --db "$ADB" import csv "$WORK/aliases.csv" --company aliases --json > "$WORK/a2.json"
a2=$(date +%s.%N)
python3 - "$ALIAS_ROWS" "$a0" "$a1" "$a2" "$WORK/a1.json" "$WORK/a2.json" \
  "$(sqlite3 "$ADB" 'SELECT count(*) FROM aliases')" <<'PY'
import json, sys
rows = int(sys.argv[1]); a0, a1, a2 = map(float, sys.argv[2:5])
first, second = json.load(open(sys.argv[5])), json.load(open(sys.argv[6]))
print(f"csv import of {rows} users with 2 aliases each: {a1-a0:.1f} s ({rows/(a1-a0):,.0f} users/s), "
      f"created {first['counts']['create']} users and {sys.argv[7]} aliases; no-change re-import "
      f"{a2-a1:.1f} s, writes: create {second['counts']['create']}, update {second['counts']['update']}")
PY

# The export of the imported million (`user export`, the format the import reads), and of the
# users with aliases, imported back into their company: a no-change plan.
e0=$(date +%s.%N)
/usr/bin/time -f %M -o "$WORK/export.rss" \
  "$BIN" --db "$DB" user export --company bench -o "$WORK/export.csv" >/dev/null
e1=$(date +%s.%N)
"$BIN" --db "$ADB" user export --company aliases -o "$WORK/aexport.csv" >/dev/null
"$BIN" --db "$ADB" import csv "$WORK/aexport.csv" --company aliases --dry-run --json > "$WORK/a3.json"
python3 - "$ROWS" "$e0" "$e1" "$(cat "$WORK/export.rss")" "$WORK/export.csv" "$WORK/a3.json" <<'PY'
import json, sys
rows, e0, e1, rss = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]) // 1024
lines = sum(1 for _ in open(sys.argv[5], "rb")) - 1
plan = json.load(open(sys.argv[6]))["counts"]
print(f"user export of the {rows} users: {e1-e0:.1f} s ({rows/(e1-e0):,.0f} rows/s), {lines} rows, peak RSS {rss} MiB; "
      f"the aliases company's export imported back: create {plan['create']}, update {plan['update']}")
PY

# The day's count of licensed users (each maintenance run: `maintain`), over the million.
m0=$(date +%s.%N)
"$BIN" --db "$DB" maintain --at 2026-12-01T12:00:00Z --json > "$WORK/maintain.json"
m1=$(date +%s.%N)
"$BIN" --db "$DB" usage --month 2026-12 --json > "$WORK/usage.json"
python3 - "$m0" "$m1" "$WORK/maintain.json" "$WORK/usage.json" <<'PY'
import json, sys
m0, m1 = float(sys.argv[1]), float(sys.argv[2])
counted = json.load(open(sys.argv[3]))["usage_counted"]
users = {c["company"]: c["last"]["users"] for c in json.load(open(sys.argv[4]))["companies"]}
print(f"maintain (the day's licensed users of {counted} compan{'y' if counted == 1 else 'ies'}): "
      f"{m1-m0:.2f} s, counted {users}")
PY

# Last, the million deleted: a header-only file with --delete-missing --force (a company that
# moved its users elsewhere). The deletes are read and written a page at a time, so the peak
# RSS stays that of an import, not the million's.
printf 'email\n' > "$WORK/empty.csv"
d0=$(date +%s.%N)
/usr/bin/time -f %M -o "$WORK/delete.rss" \
  "$BIN" --db "$DB" import csv "$WORK/empty.csv" --company bench --delete-missing --force --json \
  > "$WORK/delete.json"
d1=$(date +%s.%N)
python3 - "$d0" "$d1" "$(cat "$WORK/delete.rss")" "$WORK/delete.json" \
  "$(sqlite3 "$DB" 'SELECT count(*) FROM users')" <<'PY'
import json, sys
d0, d1, rss = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]) // 1024
deleted = json.load(open(sys.argv[4]))["counts"]["delete"]
print(f"every user deleted (--delete-missing --force, header-only file): {d1-d0:.1f} s "
      f"({deleted/(d1-d0):,.0f} deletes/s), deleted {deleted}, {sys.argv[5]} left, peak RSS {rss} MiB")
PY
