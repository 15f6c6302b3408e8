"""The database an end-to-end test runs `mailroster` on: a SQLite file (the default), or a schema
of its own on the test PostgreSQL server (tests/postgres/pg_fixture.py; ctest starts it and
passes its file with --postgres)."""
import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time

POSTGRES = None  # the server's file, when the tests run on PostgreSQL


def new_database(directory):
    """A fresh database: what --db takes."""
    if not POSTGRES:
        return os.path.join(directory, "state.db")
    with open(POSTGRES) as f:
        conninfo = json.load(f)["conninfo"]
    schema = "e2e_%d_%d" % (os.getpid(), time.monotonic_ns())
    subprocess.run(["psql", "-q", conninfo, "-c", "CREATE SCHEMA " + schema], check=True)
    return "%s options='-c search_path=%s'" % (conninfo, schema)


def database_toml(db, directory):
    """The lines of a [database] table that name db, and a [secrets] key in directory."""
    return '%s = "%s"\n[secrets]\nkey_file = "%s"' % (
        "url" if POSTGRES else "path", db, os.path.join(directory, "secrets.key"))


def execute(db, sql):
    """Runs SQL behind mailroster's back (both databases read it alike)."""
    if POSTGRES:
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", db, "-c", sql], check=True,
                       capture_output=True)
    else:
        con = sqlite3.connect(db)
        con.execute(sql)
        con.commit()
        con.close()


def suite_arguments():
    """What every end-to-end suite takes: --binary (returned, absolute) and --postgres (kept
    here); the rest of the command line is unittest's argv (returned)."""
    global POSTGRES
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--postgres", help="run on the test PostgreSQL server this file names")
    args, rest = parser.parse_known_args()
    POSTGRES = args.postgres
    return os.path.abspath(args.binary), [sys.argv[0]] + rest
