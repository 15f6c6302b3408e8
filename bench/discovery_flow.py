#!/usr/bin/env python3
"""Mail to new addresses, and how fast SMTP Discovery writes what it counts.

discovery_flow.py SMTP_PORT ADMIN_PORT ADDRESSES ROUNDS SESSIONS

Sends ROUNDS messages to each of ADDRESSES new addresses (d0@bench.example ...: one round
after the other, SESSIONS clients at once, 20 messages a connection), then waits until the
gateway says no discovery count is waiting (mailroster_discovery_writes_pending), and prints
the delivery rate, the time until every count was written, and how many addresses became
discovered (mailroster_discovered_addresses_total).
"""
import smtplib
import sys
import threading
import time
import urllib.request

smtp_port, admin_port, addresses, rounds, sessions = map(int, sys.argv[1:6])
MESSAGE = "From: a@sender.test\r\nSubject: flow\r\n\r\n" + "body line\r\n" * 40


def metrics():
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=30).read()
    values = {}
    for line in text.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def send(recipients, failures):
    for start in range(0, len(recipients), 20):
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=60) as s:
            for rcpt in recipients[start:start + 20]:
                try:
                    s.sendmail("a@sender.test", [rcpt], MESSAGE)
                except smtplib.SMTPException as e:
                    failures.append(f"{rcpt}: {e}")


before = metrics()
failures = []
started = time.monotonic()
for _ in range(rounds):
    everyone = [f"d{i}@bench.example" for i in range(addresses)]
    threads = [threading.Thread(target=send, args=(everyone[k::sessions], failures))
               for k in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
sent = time.monotonic() - started
left = metrics()["mailroster_discovery_writes_pending"]
while True:
    now = metrics()
    if now["mailroster_discovery_writes_pending"] == 0:
        break
    time.sleep(0.05)
written = time.monotonic() - started
messages = addresses * rounds - len(failures)
discovered = now["mailroster_discovered_addresses_total"] - before[
    "mailroster_discovered_addresses_total"]
counted = now["mailroster_discovery_clean_deliveries_total"] - before[
    "mailroster_discovery_clean_deliveries_total"]
print(f"messages: {messages} to {addresses} new addresses ({rounds} each), {sessions} sessions")
print(f"delivered in {sent:.1f} s: {messages / sent:,.0f} msgs/s; counts waiting then: {left:,.0f}")
print(f"every count written {written:.1f} s after the first message "
      f"({counted:,.0f} counts: {counted / written:,.0f} counts/s over the whole run)")
print(f"became discovered: {discovered:,.0f} of {addresses}")
if failures:
    print(f"FAILED: {len(failures)} messages, first: {failures[0]}")
    sys.exit(1)
