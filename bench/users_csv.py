#!/usr/bin/env python3
"""Writes the benchmarks' user CSV: users_csv.py PATH ROWS [DOMAIN [--aliases]].

ROWS users user<i>@DOMAIN (default bench.example), silent users; with --aliases each gets two
aliases, first.<i>@DOMAIN and f.last<i>@DOMAIN."""
import sys

path, rows = sys.argv[1], int(sys.argv[2])
domain = sys.argv[3] if len(sys.argv) > 3 else "bench.example"
aliases = "--aliases" in sys.argv[4:]
with open(path, "w") as f:
    f.write("email,first_name,surname,role,type,aliases\n")
    for i in range(rows):
        extra = f"first.{i}@{domain};f.last{i}@{domain}" if aliases else ""
        f.write(f"user{i}@{domain},First{i},Last{i},silent_user,user,{extra}\n")
