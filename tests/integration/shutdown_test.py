#!/usr/bin/env python3
"""What `serve` does on SIGTERM, end to end: it drains.

No new connection is taken; a session waiting between transactions is told 421 4.3.2 at once;
a session whose message is being relayed gets the destination's answer (nothing is lost, and
the client does not send it again), then 421; serve exits 0 once every session has ended, or
when [smtp] shutdown_grace is over, or at a second signal. The company's mail server here
(fake_mta.py --mode slow) waits before every reply, so that a relay is under way when the
signal comes. Usage: shutdown_test.py --binary build/mailroster
"""
import http.client
import json
import os
import signal
import socket
import smtplib
import subprocess
import sqlite3
import sys
import threading
import time
import unittest

import databases
import smtp_gateway_test as gw
from databases import database_toml, new_database

HERE = os.path.dirname(os.path.abspath(__file__))


class Shutdown(gw.ServeTestCase):
    PREFIX = "mailroster-shutdown-"

    def setUp(self):
        super().setUp()
        self.spool = os.path.join(self.dir, "spool")
        self.mta = None

    def tearDown(self):
        if self.mta:
            self.mta.kill()
            self.mta.wait()
            self.mta.stdout.close()
        super().tearDown()

    def start(self, grace, reply_delay):
        self.mta = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_mta.py"), "--spool", self.spool,
                                     "--mode", "slow", "--delay", str(reply_delay), "--accept", "sam"],
                                    stdout=subprocess.PIPE, text=True)
        mta_port = int(self.mta.stdout.readline().split()[-1])
        db = new_database(self.dir)
        gw.BINARY = BINARY
        gw.run_cli(db, "company", "add", "acme")
        gw.run_cli(db, "domain", "add", "acme.example", "--company", "acme",
                   "--destination", "127.0.0.1:%d" % mta_port)
        gw.run_cli(db, "user", "add", "sam@acme.example")
        config = os.path.join(self.dir, "mailroster.toml")
        with open(config, "w") as f:
            f.write('[database]\n%s\n[admin]\nlisten = "127.0.0.1:0"\n'
                    '[smtp]\ninbound_listen = "127.0.0.1:0"\nhostname = "mx.mailroster.test"\n'
                    'shutdown_grace = "%s"\n[outbound]\nlisten = "127.0.0.1:0"\n'
                    % (database_toml(db, self.dir), grace))
        self.log_path = os.path.join(self.dir, "serve.log")
        self.serve, self.log, self.ports = gw.start_serve(config, self.log_path)
        self.port = self.ports["inbound SMTP"]

    def idle_session(self):
        """A raw session that said EHLO and waits, outside any transaction."""
        c = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.assertTrue(c.recv(4096).startswith(b"220 "))
        c.sendall(b"EHLO idle.example\r\n")
        got = b""
        while b"\r\n250 " not in got and not got.startswith(b"250 "):
            got += c.recv(4096)
        return c

    def relay_in_background(self):
        """Sends one message to sam in a thread; its outcome lands in the returned dict."""
        outcome = {}
        ready = threading.Event()

        def send():
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
                    s.ehlo("client.example.org")
                    s.mail("bob@example.org")
                    s.rcpt("sam@acme.example")
                    ready.set()
                    outcome["data"] = s.data(gw.message("sam@acme.example", "drained"))
                    outcome["next"] = s.docmd("NOOP")
            except (smtplib.SMTPException, OSError) as e:
                outcome["error"] = e
            finally:
                ready.set()

        t = threading.Thread(target=send)
        t.start()
        ready.wait(10)
        time.sleep(0.3)  # DATA sent: the message is on its way to the slow destination
        return t, outcome

    def delivered(self):
        return [f for f in os.listdir(self.spool) if f.endswith(".eml")] if os.path.isdir(self.spool) else []

    def test_sigterm_lets_the_message_under_way_finish_and_tells_the_idle_session_421(self):
        self.start(grace="30s", reply_delay=0.4)  # the relay takes about 2.5 s
        idle = self.idle_session()
        sender, outcome = self.relay_in_background()
        signalled = time.time()
        self.serve.send_signal(signal.SIGTERM)

        idle.settimeout(5)
        told = idle.recv(4096)
        self.assertTrue(told.startswith(b"421 4.3.2 mx.mailroster.test shutting down"), told)
        self.assertLess(time.time() - signalled, 3)  # at once, not after the relay
        self.assertEqual(idle.recv(4096), b"")  # and closed
        idle.close()
        with self.assertRaises(ConnectionRefusedError):  # no new connection is taken
            socket.create_connection(("127.0.0.1", self.port), timeout=5)

        sender.join(30)
        self.assertNotIn("error", outcome, outcome)
        code, text = outcome["data"]
        self.assertEqual(code, 250, text)  # the destination's answer, after the signal
        self.assertEqual(len(self.delivered()), 1)
        self.assertEqual(outcome["next"][0], 421)  # then the session ends
        self.assertEqual(self.serve.wait(10), 0)
        log = self.log_text()
        self.assertIn("received SIGTERM, draining 2 SMTP session(s) for up to 30 s", log)
        self.assertIn("every SMTP session has ended; stopping", log)

    def test_an_admin_request_under_way_is_answered_and_an_idle_connection_closed(self):
        self.start(grace="30s", reply_delay=0.1)
        db = os.path.join(self.dir, "state.db")
        subprocess.run([BINARY, "--db", db, "operator", "add", "ops@mailroster.test"],
                       input="a long enough password\n", text=True, check=True, capture_output=True)
        admin_port = self.ports["admin HTTP"]
        idle = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=10)
        idle.request("GET", "/healthz")
        self.assertEqual(idle.getresponse().read(), b'{"status":"ok"}')  # and kept alive

        # The database held by another writer: the login (which writes a session) waits in the
        # server for it, as an import's apply would run, when the signal comes.
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        outcome = {}

        def log_in():
            conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=30)
            try:
                conn.request("POST", "/api/v1/login", json.dumps(
                    {"email": "ops@mailroster.test", "password": "a long enough password"}),
                    {"Content-Type": "application/json"})
                r = conn.getresponse()
                outcome["answer"] = (r.status, r.getheader("Connection"), json.loads(r.read()))
            except Exception as e:  # noqa: BLE001 - the test says which
                outcome["error"] = e
        t = threading.Thread(target=log_in)
        t.start()
        time.sleep(0.5)
        self.serve.send_signal(signal.SIGTERM)
        idle.sock.settimeout(5)
        self.assertEqual(idle.sock.recv(512), b"")  # the idle connection is closed at once
        time.sleep(0.5)
        self.assertIsNone(self.serve.poll())  # the request is still under way
        self.assertIn("received SIGTERM, draining 0 SMTP session(s) and 1 admin request(s) for up "
                      "to 30 s", self.log_text())
        lock.execute("COMMIT")
        t.join(30)
        self.assertNotIn("error", outcome, outcome)
        status, connection, body = outcome["answer"]
        self.assertEqual((status, connection), (200, "close"), body)
        self.assertIn("csrf_token", body)
        self.assertEqual(self.serve.wait(10), 0)
        self.assertIn("every SMTP session has ended; stopping", self.log_text())

    def test_a_second_signal_stops_at_once(self):
        self.start(grace="30s", reply_delay=2)  # the relay would take about 12 s
        sender, outcome = self.relay_in_background()
        self.serve.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        self.assertIsNone(self.serve.poll())  # draining
        self.serve.send_signal(signal.SIGINT)
        self.assertEqual(self.serve.wait(5), 0)
        self.assertIn("received SIGINT again, stopping now", self.log_text())
        sender.join(30)
        self.assertNotIn("data", outcome)  # cut: no 250, so the client will send it again
        self.assertIsInstance(outcome.get("error"), (smtplib.SMTPServerDisconnected, OSError))

    def test_the_grace_period_bounds_the_wait(self):
        self.start(grace="1s", reply_delay=2)
        sender, outcome = self.relay_in_background()
        signalled = time.time()
        self.serve.send_signal(signal.SIGTERM)
        self.assertEqual(self.serve.wait(10), 0)
        self.assertLess(time.time() - signalled, 4)
        self.assertIn("shutdown grace over; cutting 1 SMTP session(s)", self.log_text())
        sender.join(30)
        self.assertNotIn("data", outcome)


if __name__ == "__main__":
    BINARY, argv = databases.suite_arguments()
    unittest.main(argv=argv, verbosity=2)
