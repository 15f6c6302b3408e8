# What the serve benchmarks share (sourced): ports on 127.0.0.1, and the database mailroster
# runs on: SQLite in WORK, or with DATABASE=postgres a PostgreSQL server of its own
# (tests/postgres/pg_fixture.py; the caller's cleanup stops it when WORK/pg.json exists).

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; return 1; }

# Sets DB (what --db takes) and DB_KEY (its key in [database]).
bench_database() {
  if [ "${DATABASE:-sqlite}" = postgres ]; then
    python3 tests/postgres/pg_fixture.py start "$WORK/pg.json" >/dev/null
    local conn
    conn=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['conninfo'])" "$WORK/pg.json")
    psql -q "$conn" -c "CREATE DATABASE bench"
    DB="${conn/dbname=postgres/dbname=bench}"
    DB_KEY=url
  else
    DB="$WORK/mailroster.db"
    DB_KEY=path
  fi
}
