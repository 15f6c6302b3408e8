#!/usr/bin/env python3
"""Content scoring by a real rspamd ([scoring] rspamd), end to end.

Starts Debian's rspamd on a loopback port with the tests' rules (tests/rspamd/), a company mail
server (fake_mta.py) and `mailroster serve`, then sends mail with smtplib. A message's
X-Test-Verdict header picks rspamd's answer. Usage: rspamd_test.py --binary build/mailroster
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import databases
import smtp_gateway_test as gw
from databases import database_toml, new_database

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "rspamd"))
import rspamd_fixture  # noqa: E402


def message(to, verdict=None, extra=""):
    return gw.message(to, "scored", extra=("X-Test-Verdict: %s\r\n" % verdict if verdict else "") + extra)


class Rspamd(unittest.TestCase):
    failure_policy = "defer"
    rspamd_down = False  # stopped once serve runs
    rspamd_silent = False  # serve is pointed at a port that takes connections and never answers
    mark_outbound = True

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mailroster-rspamd-")
        cls.rspamd = rspamd_fixture.start(os.path.join(cls.dir, "rspamd"))
        cls.spool = os.path.join(cls.dir, "spool")
        cls.mta = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_mta.py"), "--spool", cls.spool,
                                    "--accept", "alice,carol,dave,erin,fred,gina,someone"],
                                   stdout=subprocess.PIPE, text=True)
        mta_port = int(cls.mta.stdout.readline().split()[-1])
        rspamd_port = cls.rspamd["port"]
        if cls.rspamd_silent:
            cls.silent = socket.create_server(("127.0.0.1", 0), backlog=16)
            rspamd_port = cls.silent.getsockname()[1]
        cls.db = new_database(cls.dir)
        gw.BINARY = BINARY
        cli = lambda *args: gw.run_cli(cls.db, *args)
        cli("company", "add", "acme", "--relay-network", "127.0.0.1/32")
        cli("domain", "add", "acme.example", "--company", "acme", "--destination", "127.0.0.1:%d" % mta_port)
        cli("user", "add", "alice@acme.example")
        cli("discovery", "set", "--company", "acme", "enabled=true", "auto_add_outbound=true")
        cls.cli = staticmethod(cli)
        config = os.path.join(cls.dir, "mailroster.toml")
        with open(config, "w") as f:
            f.write('[database]\n%s\n[admin]\nlisten = "127.0.0.1:0"\n'
                    '[smtp]\ninbound_listen = "127.0.0.1:0"\nhostname = "mx.mailroster.test"\n'
                    '[outbound]\nlisten = "127.0.0.1:0"\nnext_hop = "127.0.0.1:%d"\n'
                    '[scoring]\nrspamd = "127.0.0.1:%d"\nrspamd_timeout = "%s"\nrspamd_failure = "%s"\n'
                    'mark_outbound = %s\n'
                    % (database_toml(cls.db, cls.dir), mta_port, rspamd_port,
                       "2s" if cls.rspamd_silent else "5s", cls.failure_policy,
                       "true" if cls.mark_outbound else "false"))
        gw.start_gateway(cls, config)
        if cls.rspamd_down:
            rspamd_fixture.stop(cls.rspamd["dir"])

    @classmethod
    def tearDownClass(cls):
        gw.stop_gateway(cls)
        if cls.rspamd_silent:
            cls.silent.close()
        cls.mta.kill()
        cls.mta.wait()
        rspamd_fixture.stop(cls.rspamd["dir"])
        shutil.rmtree(cls.dir, ignore_errors=True)

    def send(self, to, msg, port=None, helo="client.example.org", sender="bob@example.org"):
        """(DATA code, text, the message as the company's server got it or None)."""
        before = set(os.listdir(self.spool)) if os.path.isdir(self.spool) else set()
        with gw.smtplib.SMTP("127.0.0.1", port or self.port, timeout=20) as s:
            s.ehlo(helo)
            s.mail(sender)
            for rcpt in to if isinstance(to, list) else [to]:
                code, text = s.rcpt(rcpt)
                self.assertEqual(code, 250, text)
            try:
                code, text = s.data(msg)
            except gw.smtplib.SMTPDataError as e:
                code, text = e.smtp_code, e.smtp_error
        new = sorted(f for f in (os.listdir(self.spool) if os.path.isdir(self.spool) else [])
                     if f.endswith(".eml") and f not in before)
        if not new:
            return code, text.decode(), None
        with open(os.path.join(self.spool, new[0]), "rb") as f:
            return code, text.decode(), f.read().decode()

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port, timeout=5) as r:
            return r.read().decode()

    def counted(self, address):
        """The clean deliveries counted toward discovery for address."""
        for _ in range(500):  # counts are written on a queue of their own, after the reply
            m = re.search(r"^mailroster_discovery_writes_pending (\S+)$", self.metrics(), re.M)
            if m and float(m.group(1)) == 0:
                break
            time.sleep(0.01)
        listed = {d["address"]: d for d in json.loads(self.cli("discovery", "list", "--company", "acme", "--json"))}
        return len(listed[address]["clean_inbound"]) if address in listed else 0


class ScoredByRspamd(Rspamd):
    def test_clean_message_is_relayed_and_counts_toward_discovery(self):
        code, text, got = self.send("carol@acme.example",
                                    message("carol@acme.example", extra="X-Spam: Yes\r\n"))
        self.assertEqual(code, 250, text)
        self.assertNotIn("X-Spam", got)
        self.assertEqual(self.counted("carol@acme.example"), 1)

    def test_add_header_is_relayed_marked_and_not_counted(self):
        # What the sender said of its own mail is not passed on: only the gateway's verdict.
        code, text, got = self.send("dave@acme.example", message(
            "dave@acme.example", "suspicious", "X-Spam: No\r\nX-Spam-Score: -100\r\n"))
        self.assertEqual(code, 250, text)
        headers = got.split("\r\n\r\n", 1)[0]
        self.assertIn("\r\nX-Spam: Yes\r\n", headers)
        self.assertEqual(headers.count("X-Spam:"), 1)
        self.assertEqual(headers.count("X-Spam-Score:"), 1)
        self.assertIn("X-Spam-Score: 7.00 / 15.00 (MR_TEST_SUSPICIOUS)", headers)
        self.assertEqual(self.counted("dave@acme.example"), 0)

    def test_rewrite_subject_is_relayed_with_rspamds_subject(self):
        code, text, got = self.send("erin@acme.example", message("erin@acme.example", "rewrite"))
        self.assertEqual(code, 250, text)
        headers = got.split("\r\n\r\n", 1)[0]
        self.assertIn("\r\nSubject: *** SPAM *** scored\r\n", headers)
        self.assertEqual(headers.count("Subject:"), 1)
        self.assertIn("X-Spam-Score: 11.00 / 15.00 (MR_TEST_REWRITE)", headers)
        self.assertEqual(got.split("\r\n\r\n", 1)[1], "Hello there.\r\n")
        self.assertEqual(self.counted("erin@acme.example"), 0)

    def test_rspamd_sees_the_smtp_envelope(self):
        # Two recipients, the client's HELO and address: the envelope rule fires only when
        # rspamd got them all from mailroster (and marks the message so that it shows).
        code, text, got = self.send(
            ["alice@acme.example", "erin@acme.example"],
            message("alice@acme.example", "envelope",
                    "X-Test-Expect: bob@example.org alice@acme.example,erin@acme.example "
                    "127.0.0.1 helo.client.example\r\n"),
            helo="helo.client.example")
        self.assertEqual(code, 250, text)
        self.assertIn("(MR_TEST_ENVELOPE)", got)

    def test_soft_reject_defers_with_rspamds_words(self):
        code, text, got = self.send("fred@acme.example", message("fred@acme.example", "soft"))
        self.assertEqual(code, 451)
        self.assertEqual(text, "4.7.1 try again later (test)")
        self.assertIsNone(got)
        self.assertEqual(self.counted("fred@acme.example"), 0)

    def test_reject_by_score_and_gtube_are_refused_and_go_nowhere(self):
        code, text, got = self.send("gina@acme.example", message("gina@acme.example", "spam"))
        self.assertEqual(code, 550)
        self.assertEqual(text, "5.7.1 message content rejected as spam (MR_TEST_SPAM)")
        self.assertIsNone(got)
        code, text, got = self.send("gina@acme.example", gw.message("gina@acme.example", "x", gw.GTUBE + "\r\n"))
        self.assertEqual(code, 550)
        self.assertEqual(text, "5.7.1 message content rejected as spam: Gtube pattern")
        self.assertIsNone(got)
        self.assertEqual(self.counted("gina@acme.example"), 0)
        self.assertRegex(self.metrics(), r'mailroster_scored_messages_total\{verdict="spam"\} [2-9]')

    def test_outbound_mail_is_scored_too(self):
        code, text, got = self.send("someone@elsewhere.example", message("someone@elsewhere.example", "spam"),
                                    port=self.outbound_port, sender="newbie@acme.example")
        self.assertEqual(code, 550, text)
        self.assertIsNone(got)
        # Refused mail does not make its sender a user (auto-add via outbound is on)...
        self.assertNotIn("newbie@acme.example", self.cli("user", "list", "--company", "acme"))
        # ...and neither does mail rspamd only marked.
        code, text, got = self.send("someone@elsewhere.example",
                                    message("someone@elsewhere.example", "suspicious"),
                                    port=self.outbound_port, sender="newbie@acme.example")
        self.assertEqual(code, 250, text)
        self.assertIn("X-Spam: Yes", got)
        time.sleep(0.2)
        self.counted("carol@acme.example")  # waits for the discovery queue
        self.assertNotIn("newbie@acme.example", self.cli("user", "list", "--company", "acme"))


class OutboundUnmarked(Rspamd):
    """[scoring] mark_outbound = false: outbound mail rspamd marks goes out as it came."""
    mark_outbound = False

    def test_marked_outbound_mail_goes_out_unmarked_and_still_does_not_count(self):
        for verdict in ("suspicious", "rewrite"):
            code, text, got = self.send("someone@elsewhere.example",
                                        message("someone@elsewhere.example", verdict,
                                                "X-Spam: No\r\n"),
                                        port=self.outbound_port, sender="newbie@acme.example")
            self.assertEqual(code, 250, text)
            headers = got.split("\r\n\r\n", 1)[0]
            self.assertNotIn("X-Spam", headers)  # neither rspamd's verdict nor the sender's own
            self.assertIn("\r\nSubject: scored\r\n", headers)
        time.sleep(0.2)
        self.counted("carol@acme.example")  # waits for the discovery queue
        self.assertNotIn("newbie@acme.example", self.cli("user", "list", "--company", "acme"))
        # Inbound mail is marked as before.
        code, text, got = self.send("dave@acme.example", message("dave@acme.example", "suspicious"))
        self.assertEqual(code, 250, text)
        self.assertIn("\r\nX-Spam: Yes\r\n", got.split("\r\n\r\n", 1)[0])


class RspamdDown(Rspamd):
    """rspamd stops answering while serve runs."""
    rspamd_down = True

    def test_mail_is_deferred_not_lost_or_waved_through(self):
        code, text, got = self.send("carol@acme.example", message("carol@acme.example"))
        self.assertEqual(code, 451)
        self.assertEqual(text, "4.3.0 content filter unavailable; try again later")
        self.assertIsNone(got)
        self.assertEqual(self.counted("carol@acme.example"), 0)
        self.assertRegex(self.metrics(), r"mailroster_rspamd_failures_total [1-9]")
        self.assertIn("could not be asked", open(self.log_path).read())


class RspamdSilent(Rspamd):
    """rspamd takes the connection and never answers: serve waits rspamd_timeout, no longer."""
    rspamd_silent = True

    def test_mail_is_deferred_after_the_timeout(self):
        started = time.monotonic()
        code, text, got = self.send("carol@acme.example", message("carol@acme.example"))
        took = time.monotonic() - started
        self.assertEqual(code, 451)
        self.assertEqual(text, "4.3.0 content filter unavailable; try again later")
        self.assertIsNone(got)
        self.assertGreaterEqual(took, 1.9)
        self.assertLess(took, 10)
        self.assertIn("could not be asked", open(self.log_path).read())


class RspamdDownBuiltinFallback(Rspamd):
    """rspamd_failure = "builtin": the built-in checks decide while rspamd is away."""
    failure_policy = "builtin"
    rspamd_down = True

    def test_builtin_checks_decide(self):
        code, text, got = self.send("carol@acme.example", message("carol@acme.example"))
        self.assertEqual(code, 250, text)
        self.assertEqual(self.counted("carol@acme.example"), 1)
        code, text, got = self.send("carol@acme.example", gw.message("carol@acme.example", "x", gw.GTUBE + "\r\n"))
        self.assertEqual(code, 550)
        self.assertIn("GTUBE", text)


del Rspamd  # a base, not a suite

if __name__ == "__main__":
    BINARY, argv = databases.suite_arguments()
    unittest.main(argv=argv, verbosity=2)
