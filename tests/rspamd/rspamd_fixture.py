#!/usr/bin/env python3
"""A real rspamd (Debian's 3.4) for the content-scoring tests, on a loopback port.

    rspamd_fixture.py start DIR [--milter]   -> prints JSON {"port": P, "pid": N, ...}
    rspamd_fixture.py stop DIR

DIR gets a configuration of its own (never /etc/rspamd's, which would load modules that ask
DNS blocklists and rspamd.com's fuzzy servers): one normal worker on 127.0.0.1:P, DNS pointed
at a closed loopback port, the actions reject 15 / rewrite subject 10 / add header 6, and the rules in
test_rules.lua, which decide by the X-Test-Verdict header. GTUBE is rspamd's own.
With --milter (the benchmark's Postfix) also a proxy worker that speaks the milter protocol on
127.0.0.1:"milter_port" and scans itself, as a Postfix + rspamd installation has it.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RSPAMD = "/usr/bin/rspamd"

CONFIG = """
options {{
  pidfile = "{dir}/rspamd.pid";
  filters = "";
  dns {{ nameserver = ["127.0.0.1:9"]; timeout = 0.1s; retransmits = 1; }}
  cache_file = "{dir}/symbols.cache";
  control_socket = "{dir}/rspamd.sock mode=0600";
  disable_hyperscan = true;  # compiling its patterns takes 12 s at every start here
  tempdir = "{dir}";
}}
logging {{ type = "file"; filename = "{dir}/rspamd.log"; level = "notice"; }}
actions {{ reject = 15; rewrite_subject = 10; add_header = 6; subject = "*** SPAM *** %s"; }}
lua = "{rules}";
worker "normal" {{ bind_socket = "127.0.0.1:{port}"; count = 1; }}
"""

MILTER = """
worker "rspamd_proxy" {{ bind_socket = "127.0.0.1:{milter_port}"; count = 1; milter = yes;
  timeout = 120s; upstream "local" {{ default = yes; self_scan = yes; }} }}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(directory, milter=False):
    os.makedirs(directory, exist_ok=True)
    port = free_port()
    milter_port = free_port() if milter else None
    config = os.path.join(directory, "rspamd.conf")
    with open(config, "w") as f:
        f.write(CONFIG.format(dir=directory, port=port,
                              rules=os.path.join(HERE, "test_rules.lua")))
        if milter:
            f.write(MILTER.format(milter_port=milter_port))
    # -i: the tests run as root, and rspamd refuses to run its workers as root otherwise.
    log = open(os.path.join(directory, "stdout.log"), "w")
    proc = subprocess.Popen([RSPAMD, "-f", "-i", "-c", config, "--var=DBDIR=" + directory],
                            stdout=log, stderr=log, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("rspamd exited: " + open(log.name).read())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("rspamd did not listen on %d" % port)
    server = {"port": port, "pid": proc.pid, "dir": directory}
    if milter:
        server["milter_port"] = milter_port
    with open(os.path.join(directory, "server.json"), "w") as f:
        json.dump(server, f)
    return server


def stop(directory):
    try:
        with open(os.path.join(directory, "server.json")) as f:
            pid = json.load(f)["pid"]
    except FileNotFoundError:
        return
    try:
        os.killpg(pid, signal.SIGTERM)  # the main process and its workers
    except ProcessLookupError:
        return
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)


def main():
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in ("start", "stop"):
        sys.exit(__doc__)
    if sys.argv[1] == "start":
        print(json.dumps(start(os.path.abspath(sys.argv[2]), "--milter" in sys.argv[3:])))
    else:
        stop(sys.argv[2])
        shutil.rmtree(sys.argv[2], ignore_errors=True)


if __name__ == "__main__":
    main()
