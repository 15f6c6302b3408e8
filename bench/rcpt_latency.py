#!/usr/bin/env python3
"""Latency of cached RCPT decisions: one session, MAIL FROM once per 100 recipients, RCPT
to an address whose callout result is cached; prints p50/p99/max of the RCPT round trip
as the client sees it (so it includes loopback and Python's own overhead).
Usage: rcpt_latency.py PORT ADDRESS [COUNT]"""
import socket
import sys
import time

port, address = int(sys.argv[1]), sys.argv[2]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")


def reply():
    while True:
        line = f.readline()
        if line[3:4] != b"-":
            return line


reply()
s.sendall(b"EHLO bench.example\r\n")
reply()
samples = []
for i in range(count):
    if i % 100 == 0:
        s.sendall(b"RSET\r\nMAIL FROM:<bench@example.org>\r\n")
        reply()
        reply()
    t = time.perf_counter()
    s.sendall(b"RCPT TO:<%s>\r\n" % address.encode())
    r = reply()
    samples.append(time.perf_counter() - t)
    if not r.startswith(b"250"):
        sys.exit("unexpected reply: %r" % r)
s.sendall(b"QUIT\r\n")
samples.sort()
ms = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] * 1000
print("cached RCPT round trip over %d: p50 %.3f ms, p99 %.3f ms, max %.3f ms" % (count, ms(0.5), ms(0.99), samples[-1] * 1000))
