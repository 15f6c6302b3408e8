#!/usr/bin/env python3
"""Opens COUNT idle SMTP sessions to 127.0.0.1:PORT (each reads its greeting and then says
nothing), then prints the server's resident memory from /proc/PID/status.
Usage: idle_connections.py PORT PID [COUNT]"""
import resource
import socket
import sys

port, pid = int(sys.argv[1]), int(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1000), hard))


def rss_kib():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


before = rss_kib()
socks = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    socks.append(s)
    if len(socks) % 500 == 0:  # let the greetings arrive in batches
        for t in socks[-500:]:
            if not t.recv(512).startswith(b"220"):
                sys.exit("connection %d was not greeted with 220" % len(socks))
for t in socks[len(socks) - len(socks) % 500:]:
    t.recv(512)
after = rss_kib()
print("%d idle sessions: server RSS %.1f MiB (%.1f MiB before, %.1f KiB per session)"
      % (count, after / 1024, before / 1024, (after - before) / count))
for s in socks:
    s.close()
