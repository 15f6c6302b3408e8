#!/usr/bin/env bash
# Side-by-side SMTP benchmark, all on 127.0.0.1:
#
#   smtp-source -> mailroster serve (callout verification, relay in the transaction) -> smtp-sink
#   smtp-source -> private Postfix 3.7 (reject_unverified_recipient, relay)        -> smtp-sink
#
# Cases: one recipient repeated (verification cache hits) and distinct recipients
# (smtp-source -N: every message to a new address, a callout each). Prints msgs/s of each,
# the ratio, and mailroster's cached RCPT latency.
# The Postfix instance is private (its own config, queue and ports in a temp dir); the
# system Postfix instance is never touched. Needs root (Postfix's master runs as root).
#
# Usage: bench/smtp_vs_postfix.sh [build/mailroster]   (MSGS, SESSIONS, SIZE in the env;
#        DATABASE=postgres: mailroster on a PostgreSQL server of its own, tests/postgres/;
#        SCORING=rspamd: both scan every message with one private rspamd (tests/rspamd/):
#        mailroster over rspamd's HTTP protocol, Postfix through its proxy worker as a milter;
#        PROXY=1: both behind one HAProxy sending the PROXY protocol (mailroster's
#        proxy_protocol, Postfix's smtpd_upstream_proxy_protocol = haproxy); the clients
#        connect to HAProxy, and the idle-session figure is left out);
#        MAIL_LOG=false: mailroster without its mail log (on by default, as in the product)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-build/mailroster}")
MSGS=${MSGS:-10000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-2048}
WORK=$(mktemp -d /tmp/mailroster-bench-XXXXXX)
chmod 0755 "$WORK"  # Postfix opens its data directory as the postfix user
PIDS=()
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # 10,000 idle sessions need the descriptors
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -f "$WORK/postfix/etc/main.cf" ]; then postfix -c "$WORK/postfix/etc" stop >/dev/null 2>&1 || true; fi
  if [ -f "$WORK/pg.json" ]; then python3 tests/postgres/pg_fixture.py stop "$WORK/pg.json" || true; fi
  if [ -n "${HAPROXY_PID:-}" ]; then kill "$HAPROXY_PID" 2>/dev/null || true; fi
  if [ -d "$WORK/rspamd" ]; then python3 tests/rspamd/rspamd_fixture.py stop "$WORK/rspamd" || true; fi
  sleep 0.5
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT

source bench/common.sh
now() { date +%s.%N; }

SINK=$(free_port)
smtp-sink -u postfix 127.0.0.1:"$SINK" 1024 2>"$WORK/sink.log" &
PIDS+=($!)
wait_port "$SINK"

SCORING_TOML=""
PF_MILTER=()
if [ "${SCORING:-builtin}" = rspamd ]; then
  python3 tests/rspamd/rspamd_fixture.py start "$WORK/rspamd" --milter >"$WORK/rspamd.json"
  RS_PORT=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['port'])" "$WORK/rspamd.json")
  RS_MILTER=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['milter_port'])" "$WORK/rspamd.json")
  wait_port "$RS_MILTER"
  SCORING_TOML=$'[scoring]\nrspamd = "127.0.0.1:'"$RS_PORT"'"'
  PF_MILTER=("smtpd_milters = inet:127.0.0.1:$RS_MILTER" "milter_default_action = tempfail"
    "milter_protocol = 6")
fi

PROXY_TOML=""
PF_PROXY=()
if [ "${PROXY:-}" = 1 ]; then
  PROXY_TOML=$'proxy_protocol = true\nproxy_from = ["127.0.0.1"]'
  PF_PROXY=("smtpd_upstream_proxy_protocol = haproxy")
fi

# ---- mailroster -------------------------------------------------------------------------
MR_SMTP=$(free_port)
MR_ADMIN=$(free_port)
bench_database
"$BIN" --db "$DB" company add bench >/dev/null
"$BIN" --db "$DB" domain add bench.example --company bench --destination 127.0.0.1:"$SINK" >/dev/null
"$BIN" --db "$DB" discovery set --company bench enabled=true >/dev/null
cat > "$WORK/mailroster.toml" <<TOML
[database]
$DB_KEY = "$DB"
[secrets]
key_file = "$WORK/secrets.key"
[admin]
listen = "127.0.0.1:$MR_ADMIN"
[smtp]
inbound_listen = "127.0.0.1:$MR_SMTP"
hostname = "mailroster.bench"
max_connections_per_client = 20000
$PROXY_TOML
[log]
level = "warn"
[mail_log]
enabled = ${MAIL_LOG:-true}
$SCORING_TOML
TOML
"$BIN" --config "$WORK/mailroster.toml" serve 2>"$WORK/mailroster.log" &
PIDS+=($!)
MR_PID=$!
wait_port "$MR_SMTP"

# ---- private Postfix ----------------------------------------------------------------------
PF_SMTP=$(free_port)
PF="$WORK/postfix"
mkdir -p "$PF/etc" "$PF/queue" "$PF/data"
chown postfix "$PF/data"
: > "$PF/etc/main.cf"

{ echo "127.0.0.1:$PF_SMTP inet n - n - - smtpd"; cat tests/postfix/master.cf; } > "$PF/etc/master.cf"
postconf -c "$PF/etc" -e \
  "compatibility_level = 3.6" \
  "queue_directory = $PF/queue" \
  "data_directory = $PF/data" \
  "mail_owner = postfix" \
  "myhostname = postfix.bench" \
  "mydestination =" \
  "inet_interfaces = 127.0.0.1" \
  "inet_protocols = ipv4" \
  "mynetworks = 127.0.0.0/8" \
  "relay_domains = bench.example" \
  "relay_transport = relay:[127.0.0.1]:$SINK" \
  "smtpd_relay_restrictions = reject_unauth_destination" \
  "smtpd_recipient_restrictions = reject_unverified_recipient" \
  "address_verify_map = btree:$PF/data/verify_cache" \
  "alias_maps =" "alias_database =" "local_recipient_maps =" \
  "smtp_connection_cache_on_demand = yes" \
  "maillog_file = /dev/stdout" \
  "master_service_disable =" \
  "default_process_limit = 100" \
  "smtpd_client_connection_count_limit = 0" \
  "smtpd_client_message_rate_limit = 0" \
  "smtpd_client_recipient_rate_limit = 0" \
  "smtpd_client_connection_rate_limit = 0" \
  "${PF_MILTER[@]}" "${PF_PROXY[@]}"
postfix -c "$PF/etc" check >/dev/null 2>&1 || true
# start-fg: the daemonizing `postfix start` fails in this sandbox; the foreground master works.
postfix -c "$PF/etc" start-fg >"$WORK/postfix-start.log" 2>&1 &
PIDS+=($!)
wait_port "$PF_SMTP" || { cat "$WORK/postfix-start.log" >&2; exit 1; }

# ---- HAProxy in front of both (PROXY=1) -----------------------------------------------------
if [ "${PROXY:-}" = 1 ]; then
  MR_FRONT=$(free_port)
  PF_FRONT=$(free_port)
  cat > "$WORK/haproxy.cfg" <<CFG
global
  maxconn 9000
defaults
  mode tcp
  timeout connect 5s
  timeout client 2m
  timeout server 2m
frontend mailroster
  bind 127.0.0.1:$MR_FRONT
  default_backend mailroster
backend mailroster
  server s 127.0.0.1:$MR_SMTP send-proxy
frontend postfix
  bind 127.0.0.1:$PF_FRONT
  default_backend postfix
backend postfix
  server s 127.0.0.1:$PF_SMTP send-proxy
CFG
  haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
  HAPROXY_PID=$!
  wait_port "$MR_FRONT"
  wait_port "$PF_FRONT"
  MR_SMTP=$MR_FRONT  # every client below goes through HAProxy
  PF_SMTP=$PF_FRONT
fi

# ---- runs ----------------------------------------------------------------------------------
run() {  # run <port> <messages> <extra smtp-source args...>; prints msgs/s
  local port=$1 msgs=$2
  shift 2
  local start end
  start=$(now)
  smtp-source -s "$SESSIONS" -m "$msgs" -l "$SIZE" -f bench@example.org -t user@bench.example "$@" \
    127.0.0.1:"$port" >"$WORK/source.log" 2>&1 || true
  end=$(now)
  python3 -c "print(f'{$msgs / ($end - $start):.0f}')"
}

# Warm both verification caches for the repeated recipient.
swaks --server 127.0.0.1:"$MR_SMTP" --to user@bench.example --from bench@example.org >/dev/null 2>&1 || true
for _ in 1 2 3 4 5 6; do
  if swaks --server 127.0.0.1:"$PF_SMTP" --to user@bench.example --from bench@example.org >/dev/null 2>&1; then break; fi
  sleep 1
done

echo "mailroster smtp benchmark: $MSGS messages of $SIZE bytes, $SESSIONS parallel sessions, $(nproc) cores, scoring: ${SCORING:-builtin}${PROXY:+, behind HAProxy (PROXY protocol)}"
printf '%-34s %12s %12s %8s\n' "case" "mailroster" "postfix" "ratio"
MR_HIT=$(run "$MR_SMTP" "$MSGS")
PF_HIT=$(run "$PF_SMTP" "$MSGS")
printf '%-34s %10s/s %10s/s %7sx\n' "one recipient (cache hits)" "$MR_HIT" "$PF_HIT" \
  "$(python3 -c "print(f'{$MR_HIT/$PF_HIT:.2f}')")"
# Postfix answers a new recipient only after its verify probe, polling every
# address_verify_poll_delay (3s): a few hundred messages give its rate.
PF_MISS_MSGS=${PF_MISS_MSGS:-$((MSGS < 400 ? MSGS : 400))}
MR_MISS=$(run "$MR_SMTP" "$MSGS" -N)
PF_MISS=$(run "$PF_SMTP" "$PF_MISS_MSGS" -N)
printf '%-34s %10s/s %10s/s %7sx\n' "distinct recipients (misses) [1]" "$MR_MISS" "$PF_MISS" \
  "$(python3 -c "print(f'{$MR_MISS/$PF_MISS:.2f}')")"
echo "[1] mailroster: $MSGS new addresses; postfix: $PF_MISS_MSGS (default address_verify_poll_delay)"
PF_QUEUED=$(find "$PF/queue" -type f -path '*/active/*' -o -type f -path '*/incoming/*' -o -type f -path '*/deferred/*' 2>/dev/null | wc -l)
echo "postfix messages still queued after the runs (accepted, not yet at the sink): $PF_QUEUED"
echo "postfix log: $(grep -c "status=sent" "$WORK/postfix-start.log") sent, $(grep -c "reject:" "$WORK/postfix-start.log") rejects, $(grep -c "status=deferred" "$WORK/postfix-start.log") deferred"; { grep "reject:" "$WORK/postfix-start.log" || true; } | head -3
curl -s 127.0.0.1:"$MR_ADMIN"/metrics | grep -E '^mailroster_(inbound_(messages|rcpt)_total|mail_log_(written|dropped|pending))' || true
python3 bench/rcpt_latency.py "$MR_SMTP" user@bench.example 10000
if [ "${PROXY:-}" != 1 ]; then python3 bench/idle_connections.py "$MR_SMTP" "$MR_PID" "${IDLE:-10000}"; fi
