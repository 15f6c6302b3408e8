#!/usr/bin/env bash
# Azure AD (Microsoft Graph) sync memory: USERS (default 100,000) users served by the test's
# local Graph server (tests/graph/fake_graph.py, on 127.0.0.1; Graph itself cannot run here),
# previewed (`mailroster sync azure preview`, Search Now: nothing written) and then synced into
# an empty company by `mailroster sync azure run`; prints the times and the peak RSS of each.
# The time is mostly the Python server's; the memory is mailroster's own.
# Usage: bench/graph_sync.sh [build/mailroster]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-build/mailroster}")
USERS=${USERS:-100000}
WORK=$(mktemp -d /tmp/mailroster-graph-XXXXXX)
python3 tests/graph/fake_graph.py --users "$USERS" --page-size 999 > "$WORK/graph.out" 2>&1 &
GRAPH=$!
trap 'kill $GRAPH 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do grep -q "^PORT " "$WORK/graph.out" && break; sleep 0.1; done
PORT=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$WORK/graph.out")
DB="$WORK/m.db"
"$BIN" --db "$DB" company add corp >/dev/null
"$BIN" --db "$DB" domain add corp.example --company corp --destination 127.0.0.1:25 >/dev/null
echo graph-secret | "$BIN" --db "$DB" sync azure configure --company corp \
  --set tenant_id=contoso-tenant --set client_id=mailroster-app \
  --set login_url="http://127.0.0.1:$PORT" --set graph_url="http://127.0.0.1:$PORT" \
  --secret-stdin >/dev/null
/usr/bin/time -f "%e %M" -o "$WORK/preview.rss" "$BIN" --db "$DB" sync azure preview \
  --company corp --json > "$WORK/preview.json"
t0=$(date +%s.%N)
/usr/bin/time -f %M -o "$WORK/rss" "$BIN" --db "$DB" sync azure run --company corp --json \
  > "$WORK/run.json"
t1=$(date +%s.%N)
python3 - "$USERS" "$t0" "$t1" "$WORK/run.json" "$(cat "$WORK/rss")" "$(cat "$WORK/preview.rss")" \
  "$WORK/preview.json" <<'PY'
import json, sys
users, t0, t1 = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
run = json.load(open(sys.argv[4]))
pt, prss = sys.argv[6].split()
planned = json.load(open(sys.argv[7]))["counts"]["create"]
print(f"azure Search Now of {users} users: {float(pt):.1f} s, {planned} to create, "
      f"peak RSS {int(prss) // 1024} MiB")
print(f"azure sync of {users} users: {t1-t0:.1f} s, created {run['created']}, "
      f"peak RSS {int(sys.argv[5]) // 1024} MiB")
PY
