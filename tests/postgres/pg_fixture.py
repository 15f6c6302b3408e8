#!/usr/bin/env python3
"""A real PostgreSQL server for the tests, on a loopback port, thrown away afterwards.

    pg_fixture.py start FILE   -> starts a fresh cluster, writes FILE (JSON: conninfo, data, bin)
    pg_fixture.py stop FILE    -> stops it and removes its data
    (halt and resume, for a test of its own cluster: an outage and the end of it)

initdb makes a cluster in a new temporary directory (superuser "mailroster", trust on loopback
only), and the server listens on 127.0.0.1 alone, durability off (fsync, synchronous_commit,
full_page_writes: a test cluster need not survive a crash). PostgreSQL refuses to run as root:
as root, the cluster belongs to the "postgres" system user (Debian's package makes it) and its
commands run as that user.
"""
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile


def bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]))
    if not found:
        sys.exit("no PostgreSQL server: install Debian's postgresql (scripts/install-deps.sh)")
    return os.path.dirname(found[-1])


def as_owner(cmd):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(path):
    bin_ = bindir()
    data = tempfile.mkdtemp(prefix="mailroster-pg-")
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
    os.chmod(data, 0o700)
    cluster = os.path.join(data, "cluster")
    subprocess.run(as_owner([f"{bin_}/initdb", "-D", cluster, "-U", "mailroster",
                             "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]),
                   check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
               "-c shared_buffers=1GB")
    subprocess.run(as_owner([f"{bin_}/pg_ctl", "-D", cluster, "-o", options,
                             "-l", os.path.join(data, "server.log"), "-w", "-t", "60", "start"]),
                   check=True, stdout=subprocess.DEVNULL)
    info = {"conninfo": f"host=127.0.0.1 port={port} user=mailroster dbname=postgres",
            "data": data, "bin": bin_, "port": port, "options": options}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(info, f)
    print(json.dumps(info))


def halt(info):
    """Stops the server as an outage would (its connections are cut), keeping its data."""
    subprocess.run(as_owner([f"{info['bin']}/pg_ctl", "-D", os.path.join(info["data"], "cluster"),
                             "-m", "fast", "-w", "stop"]), check=True, stdout=subprocess.DEVNULL)


def resume(info):
    """Starts a halted server again, on the same port."""
    subprocess.run(as_owner([f"{info['bin']}/pg_ctl", "-D", os.path.join(info["data"], "cluster"),
                             "-o", info["options"], "-l", os.path.join(info["data"], "server.log"),
                             "-w", "-t", "60", "start"]), check=True, stdout=subprocess.DEVNULL)


def stop(path):
    try:
        with open(path) as f:
            info = json.load(f)
    except FileNotFoundError:
        return
    cluster = os.path.join(info["data"], "cluster")
    subprocess.run(as_owner([f"{info['bin']}/pg_ctl", "-D", cluster, "-m", "immediate", "-w",
                             "stop"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(info["data"], ignore_errors=True)
    os.remove(path)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit(__doc__)
    (start if sys.argv[1] == "start" else stop)(sys.argv[2])
