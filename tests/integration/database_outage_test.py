#!/usr/bin/env python3
"""serve through an outage of its PostgreSQL server, end to end.

The test runs a PostgreSQL cluster of its own (tests/postgres/pg_fixture.py, on a loopback port),
so that stopping it disturbs no other test. While the database is down: /healthz says 503 with
the reason; a recipient that needs the database is deferred (451 4.3.0: the sender retries),
never refused (5xx) and never taken without a destination's yes; serve keeps running. When the
database is back, serve uses it again by itself (no restart), and the mail log entries of the
outage are written then. Usage: database_outage_test.py --binary build/mailroster
"""
import json
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import databases
import smtp_gateway_test as gw

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "postgres"))
import pg_fixture  # noqa: E402


class DatabaseOutage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mailroster-outage-")
        cls.server_file = os.path.join(cls.dir, "postgres.json")
        pg_fixture.start(cls.server_file)
        with open(cls.server_file) as f:
            cls.server = json.load(f)
        databases.POSTGRES = cls.server_file
        cls.db = databases.new_database(cls.dir)
        cls.spool = os.path.join(cls.dir, "spool")
        cls.mta = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_mta.py"), "--spool", cls.spool,
                                    "--accept", "alice,bob,carol,dave"], stdout=subprocess.PIPE, text=True)
        mta_port = int(cls.mta.stdout.readline().split()[-1])
        gw.BINARY = BINARY
        cli = lambda *args: gw.run_cli(cls.db, *args)
        cli("company", "add", "acme")
        cli("domain", "add", "acme.example", "--company", "acme", "--destination", "127.0.0.1:%d" % mta_port)
        cli("user", "add", "alice@acme.example")
        cli("discovery", "set", "--company", "acme", "enabled=true")
        config = os.path.join(cls.dir, "mailroster.toml")
        with open(config, "w") as f:
            f.write('[database]\n%s\n[admin]\nlisten = "127.0.0.1:0"\n'
                    '[smtp]\ninbound_listen = "127.0.0.1:0"\nhostname = "mx.mailroster.test"\n'
                    '[outbound]\nlisten = "127.0.0.1:0"\n'
                    % databases.database_toml(cls.db, cls.dir))
        gw.start_gateway(cls, config)

    @classmethod
    def tearDownClass(cls):
        gw.stop_gateway(cls)
        cls.mta.kill()
        cls.mta.wait()
        pg_fixture.stop(cls.server_file)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def healthz(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.admin_port, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    def metrics(self):
        return urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port, timeout=10).read()

    def send(self, to, subject):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=20) as s:
            s.ehlo("client.example.org")
            s.mail("sender@example.org")
            code, text = s.rcpt(to)
            if code != 250:
                return code, text.decode(), None
            code2, text2 = s.data(gw.message(to, subject))
            return code, text.decode(), code2

    def test_an_outage_defers_mail_and_serve_comes_back_by_itself(self):
        self.assertEqual(self.send("alice@acme.example", "before")[::2], (250, 250))
        # A message whose recipient was taken before the outage: relayed during it (the
        # destination's yes is what the client hears), its log entry kept until the end.
        in_flight = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
        in_flight.ehlo("client.example.org")
        in_flight.mail("sender@example.org")
        self.assertEqual(in_flight.rcpt("alice@acme.example")[0], 250)
        # One to an address that is no user's (the destination's yes taken before the outage):
        # its discovery count, made during the outage, waits for the database and counts after.
        to_dave = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
        to_dave.ehlo("client.example.org")
        to_dave.mail("sender@example.org")
        self.assertEqual(to_dave.rcpt("dave@acme.example")[0], 250)
        pg_fixture.halt(self.server)
        try:
            status, body = self.healthz()
            self.assertEqual(status, 503)
            self.assertEqual(body["status"], "unavailable")
            self.assertIn("database unavailable", body["reason"])
            code, text = in_flight.data(gw.message("alice@acme.example", "in flight"))
            self.assertEqual(code, 250, text)
            in_flight.quit()
            code, text = to_dave.data(gw.message("dave@acme.example", "in flight"))
            self.assertEqual(code, 250, text)
            to_dave.quit()
            # Unknown addresses need the database: deferred, never refused, never taken.
            for to in ("bob@acme.example", "carol@acme.example"):
                rcpt, text, _ = self.send(to, "during")
                self.assertEqual((rcpt, text), (451, "4.3.0 temporary local problem; try again later"))
            # A user may still be known from memory; then the destination's answer is the one.
            rcpt, text, data = self.send("alice@acme.example", "during")
            self.assertIn((rcpt, data), [(451, None), (250, 250)], text)
            alice_deferred = rcpt == 451
            # The writes that wait say so (an operator's alert), within the second of the mail
            # log's next write.
            deadline = time.time() + 5
            while b"\nmailroster_database_writes_failing 1\n" not in self.metrics():
                self.assertLess(time.time(), deadline, "writes failing, not said")
                time.sleep(0.2)
            self.assertIsNone(self.serve.poll(), "serve exited")
        finally:
            pg_fixture.resume(self.server)
        # Back by itself, no restart.
        deadline = time.time() + 30
        while self.healthz()[0] != 200:
            self.assertLess(time.time(), deadline, "serve did not use the database again")
            time.sleep(0.1)
        self.assertEqual(self.send("bob@acme.example", "after")[::2], (250, 250))
        self.assertIsNone(self.serve.poll())
        # The mail log has all of it: the outage's deferrals (their company could not be read:
        # the operators' entries, in the log of every company at once) and the message in flight.
        want = {("alice@acme.example", "delivered"), ("bob@acme.example", "deferred"),
                ("carol@acme.example", "deferred"), ("bob@acme.example", "delivered")}
        if alice_deferred:
            want.add(("alice@acme.example", "deferred"))
        deadline = time.time() + 10
        while True:
            log = json.loads(gw.run_cli(self.db, "mail-log", "--json"))
            got = {(e["recipient"], e["result"]) for e in log}
            if want <= got or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertLessEqual(want, got, log)
        delivered_to_alice = [e for e in log if e["recipient"] == "alice@acme.example" and e["result"] == "delivered"]
        self.assertEqual(len(delivered_to_alice), 2 if alice_deferred else 3, log)
        # bob's clean delivery after the outage counts toward discovery, and so does dave's of
        # the outage (tried again every second until the database takes it).
        deadline = time.time() + 10
        while True:
            found = json.loads(gw.run_cli(self.db, "discovery", "list", "--company", "acme", "--json"))
            found = {d["address"]: d for d in found}
            if {"bob@acme.example", "dave@acme.example"} <= found.keys() or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertIn("bob@acme.example", found)
        self.assertIn("dave@acme.example", found, "the count made during the outage was lost")
        self.assertEqual(len(found["dave@acme.example"]["clean_inbound"]), 1)
        metrics = self.metrics()
        self.assertIn(b"\nmailroster_database_writes_failing 0\n", metrics)
        self.assertIn(b"\nmailroster_discovery_writes_pending 0\n", metrics)
        self.assertIn(b"\nmailroster_discovery_counts_dropped_total 0\n", metrics)


if __name__ == "__main__":
    BINARY, argv = databases.suite_arguments()
    unittest.main(argv=argv, verbosity=2)
