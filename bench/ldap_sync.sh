#!/usr/bin/env bash
# LDAP sync benchmark: USERS (default 100,000) entries in a real slapd on loopback (the test
# fixture, tests/ldap/slapd_fixture.py), then
#   - ldapsearch dumping the same entries and attributes (paged, 500 per page) to /dev/null,
#   - `mailroster sync ldap preview` (Search Now: read and plan, write nothing),
#   - `mailroster sync ldap run` into an empty company (full sync: read, plan, apply),
#   - the same run again (no change: must write nothing),
# and the ratio full sync / ldapsearch. Target: <= 1.5x.
# Usage: bench/ldap_sync.sh [build/mailroster]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-build/mailroster}")
USERS=${USERS:-100000}
WORK=$(mktemp -d /tmp/mailroster-ldap-XXXXXX)
trap 'python3 tests/ldap/slapd_fixture.py stop "$WORK/slapd"; rm -rf "$WORK"' EXIT
t=$(date +%s.%N)
python3 tests/ldap/slapd_fixture.py start "$WORK/slapd" --users "$USERS" --big-group 1600 \
  > "$WORK/info.json"
echo "slapd loaded with $USERS users in $(python3 -c "import time,sys; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$t") s"
get() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$WORK/info.json" "$1"; }
PORT=$(get ldap_port); BIND=$(get bind_dn); BASE=$(get base_dn); PW=$(get password)
DB="$WORK/m.db"
"$BIN" --db "$DB" company add corp >/dev/null
"$BIN" --db "$DB" domain add corp.example --company corp --destination 127.0.0.1:25 >/dev/null
echo "$PW" | "$BIN" --db "$DB" sync ldap configure --company corp --set host=127.0.0.1 \
  --set port="$PORT" --set bind_dn="$BIND" --set base_dn="$BASE" --secret-stdin >/dev/null

now() { date +%s.%N; }
t0=$(now)
ldapsearch -x -LLL -H "ldap://127.0.0.1:$PORT" -D "$BIND" -w "$PW" -b "$BASE" -E pr=500/noprompt \
  "(|(mail=*)(proxyAddresses=*)(objectClass=group)(objectClass=groupOfNames))" objectClass mail \
  givenName sn proxyAddresses userAccountControl msExchHideFromAddressLists \
  msExchRecipientTypeDetails objectGUID entryUUID groupType member > "$WORK/dump.ldif"
t1=$(now)
/usr/bin/time -f "%e %M" -o "$WORK/preview.rss" "$BIN" --db "$DB" sync ldap preview --company corp \
  --json > "$WORK/preview.json"
t1b=$(now)
/usr/bin/time -f %M -o "$WORK/full.rss" "$BIN" --db "$DB" sync ldap run --company corp --json \
  > "$WORK/full.json"
t2=$(now)
"$BIN" --db "$DB" sync ldap run --company corp --json > "$WORK/again.json"
t3=$(now)
python3 - "$t0" "$t1" "$t2" "$t3" "$WORK/full.json" "$WORK/again.json" "$(cat "$WORK/full.rss")" \
  "$(grep -c '^dn:' "$WORK/dump.ldif")" "$(cat "$WORK/preview.rss")" "$t1b" <<'PY'
import json, sys
t0, t1, t2, t3 = map(float, sys.argv[1:5])
full, again = json.load(open(sys.argv[5])), json.load(open(sys.argv[6]))
rss, entries = int(sys.argv[7]) // 1024, int(sys.argv[8])
dump, sync, resync = t1 - t0, t2 - float(sys.argv[10]), t3 - t2
print(f"ldapsearch dump of {entries} entries: {dump:.2f} s")
print(f"full sync: {sync:.2f} s (created {full['created']}), {sync/dump:.2f}x ldapsearch, peak RSS {rss} MiB")
pt, prss = sys.argv[9].split()
print(f"Search Now (sync ldap preview --json): {float(pt):.2f} s, peak RSS {int(prss) // 1024} MiB")
print(f"no-change resync: {resync:.2f} s, writes: created {again['created']}, updated {again['updated']}, deleted {again['deleted']}")
PY
