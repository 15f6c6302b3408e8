#!/usr/bin/env python3
"""mailroster between real Postfix programs, on 127.0.0.1, as it stands at a company:

    smtp-source / smtplib -> mailroster inbound -> Postfix (the company's mail server)
                                                   -> its mailboxes (fake_mta.py)
    Postfix, sending out  -> mailroster outbound -> smtp-sink (the internet)
    smtp-source           -> mailroster inbound -> smtp-sink (a destination that takes anything)

The company's Postfix is a private instance (its own configuration, queue and port in a temp
dir; the system's Postfix is never touched). It knows its users from relay_recipient_maps, so
mailroster's callouts get Postfix's own answers, and it sends mail for other domains through
mailroster's outbound port (relayhost). Needs root: Postfix's master runs as root.
Usage: postfix_interop_test.py --binary build/mailroster [--postgres FILE]
"""
import glob
import json
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import databases
from certificates import self_signed
from databases import database_toml, new_database
from smtp_gateway_test import free_port, message, run_cli, start_serve
import smtp_gateway_test

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = None

# What a private Postfix runs besides its smtpd (shared with bench/smtp_vs_postfix.sh).
MASTER_CF = os.path.join(HERE, "..", "postfix", "master.cf")

# The company's mailboxes, as Postfix's relay_recipient_maps (a regexp table: smtp-source -N
# puts a number before the local part).
RECIPIENTS = r"""/^[0-9]*(alice|bob|carol|dora|jürgen)@corp\.example$/ OK
"""


def wait_port(port, what, log=None):
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=2).quit()
            return
        except (OSError, smtplib.SMTPException):
            time.sleep(0.1)
    text = ""
    if log:
        with open(log) as f:
            text = "\n" + f.read()
    raise RuntimeError("%s did not open port %d%s" % (what, port, text))


class PostfixInterop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            cls.start()
        except BaseException:
            cls.tearDownClass()  # unittest does not, when setUpClass fails
            raise

    @classmethod
    def start(cls):
        if os.geteuid() != 0:
            raise RuntimeError("needs root: Postfix's master runs as root (the test command runs as root)")
        cls.dir = tempfile.mkdtemp(prefix="mailroster-postfix-")
        os.chmod(cls.dir, 0o755)  # Postfix opens its data directory as the postfix user
        cls.procs = []

        # The company's mailboxes: take everything, offer SMTPUTF8 and DSN.
        cls.mailboxes = os.path.join(cls.dir, "mailboxes")
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_mta.py"), "--spool", cls.mailboxes,
                              "--catch-all", "--smtputf8", "--dsn"], stdout=subprocess.PIPE, text=True)
        cls.procs.append(p)
        mailbox_port = int(p.stdout.readline().split()[-1])

        # The internet, and a destination that takes anything: Postfix's smtp-sink, writing each
        # message it is given to a file of its own.
        cls.sinks = {}
        for name in ("internet", "anything"):
            port, dump = free_port(), os.path.join(cls.dir, "sink-" + name)
            os.makedirs(dump)
            shutil.chown(dump, "postfix")
            cls.procs.append(subprocess.Popen(
                ["smtp-sink", "-u", "postfix", "-d", dump + "/%H%M%S.", "127.0.0.1:%d" % port, "64"],
                stderr=subprocess.DEVNULL))
            cls.sinks[name] = (port, dump)
        for name, (port, _) in cls.sinks.items():
            wait_port(port, "smtp-sink " + name)

        # One certificate (names 127.0.0.1) for Postfix's smtpd and mailroster's two ports: the
        # hops between them go in TLS where both sides offer it, as they would at a company.
        cls.cert, cls.key = self_signed(cls.dir, "127.0.0.1", ip="127.0.0.1", files=("cert.pem", "key.pem"),
                                        rsa=True)

        # mailroster.
        cls.admin_port = free_port()
        cls.postfix_port = free_port()
        cls.db = new_database(cls.dir)
        cls.cli("company", "add", "corp", "--relay-network", "127.0.0.1/32")
        cls.cli("domain", "add", "corp.example", "--company", "corp", "--destination",
                "127.0.0.1:%d" % cls.postfix_port)
        cls.cli("domain", "add", "sink.example", "--company", "corp", "--destination",
                "127.0.0.1:%d" % cls.sinks["anything"][0])
        cls.cli("user", "add", "alice@corp.example", "--first-name", "Alice")
        cls.cli("user", "add", "dan@sink.example")
        cls.cli("discovery", "set", "--company", "corp", "enabled=true")
        config = os.path.join(cls.dir, "mailroster.toml")
        with open(config, "w") as f:
            f.write('[database]\n%s\n[admin]\nlisten = "127.0.0.1:%d"\n'
                    '[smtp]\ninbound_listen = "127.0.0.1:0"\nhostname = "mx.mailroster.test"\n'
                    'tls_cert = "%s"\ntls_key = "%s"\n'
                    '[outbound]\nlisten = "127.0.0.1:0"\nnext_hop = "127.0.0.1:%d"\n'
                    % (database_toml(cls.db, cls.dir), cls.admin_port, cls.cert, cls.key,
                       cls.sinks["internet"][0]))
        cls.config = config
        cls.serve, cls.serve_log, ports = start_serve(config, os.path.join(cls.dir, "serve.log"))
        cls.port, cls.outbound_port = ports["inbound SMTP"], ports["outbound SMTP"]

        # The company's Postfix: relays corp.example to its mailboxes for the users it knows,
        # and everything its users send elsewhere through mailroster's outbound port.
        pf = cls.postfix_dir = os.path.join(cls.dir, "postfix")
        for sub in ("etc", "queue", "data"):
            os.makedirs(os.path.join(pf, sub))
        shutil.chown(os.path.join(pf, "data"), "postfix")
        with open(os.path.join(pf, "etc", "main.cf"), "w"):
            pass
        with open(os.path.join(pf, "etc", "master.cf"), "w") as f:
            with open(MASTER_CF) as services:
                f.write("127.0.0.1:%d inet n - n - - smtpd\n" % cls.postfix_port + services.read())
        with open(os.path.join(pf, "etc", "recipients"), "w") as f:
            f.write(RECIPIENTS)
        subprocess.run(["postconf", "-c", os.path.join(pf, "etc"), "-e",
                        "compatibility_level = 3.6",
                        "queue_directory = " + os.path.join(pf, "queue"),
                        "data_directory = " + os.path.join(pf, "data"),
                        "mail_owner = postfix",
                        "myhostname = mail.corp.example",
                        "mydestination =",
                        "inet_interfaces = 127.0.0.1",
                        "inet_protocols = ipv4",
                        "mynetworks = 127.0.0.0/8",
                        "relay_domains = corp.example",
                        "relay_recipient_maps = regexp:" + os.path.join(pf, "etc", "recipients"),
                        "relay_transport = relay:[127.0.0.1]:%d" % mailbox_port,
                        "relayhost = [127.0.0.1]:%d" % cls.outbound_port,
                        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
                        "smtputf8_enable = yes",
                        "smtpd_tls_security_level = may",
                        "smtpd_tls_cert_file = " + cls.cert, "smtpd_tls_key_file = " + cls.key,
                        "smtp_tls_security_level = may",
                        "alias_maps =", "alias_database =", "local_recipient_maps =",
                        "maillog_file = /dev/stdout",  # into postfix.log, below
                        "master_service_disable =",
                        "queue_run_delay = 1s", "minimal_backoff_time = 1s", "maximal_backoff_time = 2s",
                        "smtpd_client_connection_count_limit = 0",
                        "smtpd_client_connection_rate_limit = 0"],
                       check=True, capture_output=True)
        # start-fg: the daemonizing `postfix start` does not work in every sandbox.
        cls.postfix_out = open(os.path.join(cls.dir, "postfix.log"), "w")
        cls.postfix = subprocess.Popen(["postfix", "-c", os.path.join(pf, "etc"), "start-fg"],
                                       stdout=cls.postfix_out, stderr=subprocess.STDOUT)
        wait_port(cls.postfix_port, "postfix", os.path.join(cls.dir, "postfix.log"))

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "postfix", None):
            subprocess.run(["postfix", "-c", os.path.join(cls.postfix_dir, "etc"), "stop"], capture_output=True)
            try:
                cls.postfix.wait(20)
            except subprocess.TimeoutExpired:
                cls.postfix.kill()
            cls.postfix_out.close()
        if getattr(cls, "serve", None):
            cls.serve.terminate()
            cls.serve.wait(10)
            cls.serve_log.close()
        for p in getattr(cls, "procs", []):
            p.kill()
            p.wait()
        if not getattr(cls, "dir", None):
            return
        if os.environ.get("KEEP"):
            print("kept", cls.dir)
        else:
            shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def cli(cls, *args):
        return run_cli(cls.db, *args)

    # ---- helpers --------------------------------------------------------------------------

    def mailbox_messages(self, to=None):
        """What reached the company's mailboxes through Postfix: (envelope, bytes) pairs."""
        found = []
        for eml in sorted(glob.glob(os.path.join(self.mailboxes, "*.eml"))):
            with open(eml[:-4] + ".json") as f:
                envelope = json.load(f)
            if to is None or to in envelope["to"]:
                with open(eml, "rb") as f:
                    found.append((envelope, f.read()))
        return found

    def wait_for(self, what, count_fn, want, seconds=60):
        """Postfix delivers from its queue, after it answered: waits until count_fn() >= want."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            have = count_fn()
            if have >= want:
                return have
            time.sleep(0.2)
        with open(os.path.join(self.dir, "postfix.log")) as f:
            log = f.read()[-3000:]
        self.fail("%s: %d of %d after %d s; postfix log:\n%s" % (what, count_fn(), want, seconds, log))

    def sink_files(self, name):
        return sorted(glob.glob(os.path.join(self.sinks[name][1], "*")))

    def metric(self, name, labels=""):
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port).read().decode()
        m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
        return float(m.group(1)) if m else 0.0

    def smtp_source(self, port, *args):
        r = subprocess.run(["smtp-source", "-f", "sender@example.org"] + list(args) + ["127.0.0.1:%d" % port],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def discovered(self):
        for _ in range(500):  # the counts are written on a queue of their own
            if self.metric("mailroster_discovery_writes_pending") == 0:
                break
            time.sleep(0.01)
        return {d["address"]: d for d in json.loads(self.cli("discovery", "list", "--company", "corp", "--json"))}

    # ---- inbound: smtp-source and smtplib through mailroster to Postfix ------------------

    def test_smtp_source_sessions_reach_the_mailboxes_through_postfix(self):
        before = len(self.mailbox_messages("alice@corp.example"))
        delivered = self.metric("mailroster_inbound_messages_total", '{result="delivered"}')
        # 60 messages over 6 parallel sessions, several per connection (-d), with pipelining.
        self.smtp_source(self.port, "-s", "6", "-m", "60", "-d", "-l", "4096", "-t", "alice@corp.example")
        self.assertEqual(self.metric("mailroster_inbound_messages_total", '{result="delivered"}') - delivered, 60)
        self.wait_for("messages at the mailboxes", lambda: len(self.mailbox_messages("alice@corp.example")) - before, 60)
        envelope, body = self.mailbox_messages("alice@corp.example")[-1]
        self.assertEqual(envelope["from"], "sender@example.org")
        # Postfix took it from mailroster, in TLS (mailroster's STARTTLS, policy "may").
        self.assertIn(b"by mail.corp.example (Postfix) with ESMTPS", body)

    def callout_session(self, known, unknown, subject):
        """One session through mailroster to corp.example: the recipient Postfix knows is
        taken, the one it does not gets Postfix's own refusal, and the message is accepted."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
            s.ehlo("client.example.org")
            s.mail("sender@example.org")
            self.assertEqual(s.rcpt(known)[0], 250)
            code, text = s.rcpt(unknown)
            self.assertEqual(code, 550)
            self.assertIn(b"5.1.1", text)
            self.assertIn(b"User unknown in relay recipient table", text)  # Postfix's words
            code, text = s.data(message(known, subject))
            self.assertEqual(code, 250, text)

    def test_callout_gets_postfix_own_answers(self):
        self.callout_session("bob@corp.example", "nobody@corp.example", "for bob")  # Postfix knows bob
        self.wait_for("bob's message", lambda: len(self.mailbox_messages("bob@corp.example")), 1)
        self.assertEqual(len(self.discovered()["bob@corp.example"]["clean_inbound"]), 1)
        self.assertNotIn("nobody@corp.example", self.discovered())

    def test_a_busy_first_server_hands_callouts_and_mail_to_postfix(self):
        """corp.example's destination names two servers: the first, a Postfix smtp-sink that
        answers every connection 421, hands the callout and the message to the company's
        Postfix, which gives its own answers and delivers."""
        busy = free_port()
        p = subprocess.Popen(["smtp-sink", "-u", "postfix", "-Q", "CONNECT", "127.0.0.1:%d" % busy, "16"],
                             stderr=subprocess.DEVNULL)
        self.addCleanup(p.wait)
        self.addCleanup(p.kill)
        deadline = time.time() + 20
        while True:  # it answers 421 at once: smtplib would refuse to wait_port
            try:
                socket.create_connection(("127.0.0.1", busy), timeout=2).close()
                break
            except OSError:
                self.assertLess(time.time(), deadline, "smtp-sink did not open its port")
                time.sleep(0.1)
        self.cli("domain", "update", "corp.example", "--destination",
                 "127.0.0.1:%d, 127.0.0.1:%d" % (busy, self.postfix_port))
        self.addCleanup(self.cli, "domain", "update", "corp.example", "--destination",
                        "127.0.0.1:%d" % self.postfix_port)
        failovers = self.metric("mailroster_relay_failovers_total")
        before = len(self.mailbox_messages("7dora@corp.example"))
        self.callout_session("7dora@corp.example", "nobody7@corp.example", "through the second server")
        self.wait_for("7dora's message", lambda: len(self.mailbox_messages("7dora@corp.example")) - before, 1)
        self.assertGreaterEqual(self.metric("mailroster_relay_failovers_total") - failovers, 2)
        with open(os.path.join(self.dir, "serve.log")) as f:
            self.assertIn("127.0.0.1:%d: 421" % busy, f.read())

    def test_distinct_recipients_are_each_verified_at_postfix(self):
        callouts = self.metric("mailroster_inbound_rcpt_total", '{result="callout_accept"}')
        before = len(self.mailbox_messages())
        # smtp-source -N: 1carol@, 2carol@, ... - each a new address, each one callout.
        self.smtp_source(self.port, "-s", "4", "-m", "24", "-N", "-t", "carol@corp.example")
        self.assertEqual(self.metric("mailroster_inbound_rcpt_total", '{result="callout_accept"}') - callouts, 24)
        self.wait_for("messages at the mailboxes", lambda: len(self.mailbox_messages()) - before, 24)

    def test_domain_check_of_the_company_postfix(self):
        r = subprocess.run([BINARY, "--config", self.config, "domain", "check", "corp.example", "--json"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        found = json.loads(r.stdout)
        self.assertTrue(found["connected"])
        self.assertIn("SMTPUTF8", found["extensions"])
        self.assertTrue(found["tls"]["active"])  # Postfix's smtpd_tls_security_level = may
        self.assertTrue(found["tls"]["names_host"])
        self.assertTrue(found["verifies_recipients"])  # relay_recipient_maps: 550 for others
        self.assertIn("User unknown in relay recipient table", found["random_recipient"])

    # ---- internationalised mail (SMTPUTF8) -------------------------------------------------

    def send_utf8(self, to):
        """MAIL ... SMTPUTF8 with a UTF-8 header; returns (rcpt code, data code or None, text)."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
            s.ehlo("client.example.org")
            s.mail("björn@example.org", ["SMTPUTF8"])
            code, text = s.rcpt(to)
            if code != 250:
                return code, None, text.decode()
            code2, text2 = s.data(message(to, "grüße").encode("utf-8"))
            return code, code2, text2.decode()

    def test_utf8_address_is_verified_and_relayed_by_postfix_with_smtputf8(self):
        rcpt, code, text = self.send_utf8("jürgen@corp.example")  # known to Postfix only
        self.assertEqual((rcpt, code), (250, 250), text)
        self.wait_for("jürgen's message", lambda: len(self.mailbox_messages("jürgen@corp.example")), 1)
        envelope, body = self.mailbox_messages("jürgen@corp.example")[-1]
        self.assertEqual(envelope["from"], "björn@example.org")
        self.assertIn("SMTPUTF8", envelope["params"])  # mailroster -> Postfix -> mailboxes
        self.assertIn("Subject: grüße".encode(), body)
        self.assertIn(b"with UTF8SMTP", body)
        rcpt, _, text = self.send_utf8("jörg@corp.example")  # Postfix does not know him
        self.assertEqual(rcpt, 550)
        self.assertIn("User unknown in relay recipient table", text)

    def test_utf8_mail_to_smtp_sink_which_lacks_smtputf8_is_refused_with_5_6_7(self):
        self.cli("user", "add", "dörte@sink.example")
        before = len(self.sink_files("anything"))
        rcpt, code, text = self.send_utf8("dörte@sink.example")
        self.assertEqual((rcpt, code), (250, 550), text)
        self.assertIn("5.6.7", text)
        rcpt, _, text = self.send_utf8("ünknown@sink.example")  # a callout could not ask
        self.assertEqual(rcpt, 553)
        self.assertIn("5.6.7", text)
        self.assertEqual(len(self.sink_files("anything")), before)

    # ---- delivery status notifications (DSN, RFC 3461) -------------------------------------

    def test_dsn_requests_go_through_mailroster_and_postfix_to_the_mailboxes(self):
        before = len(self.mailbox_messages("dora@corp.example"))
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
            s.ehlo("client.example.org")
            self.assertIn("dsn", s.esmtp_features)
            s.sendmail("sender@example.org", ["dora@corp.example"], message("dora@corp.example", "dsn"),
                       mail_options=["RET=HDRS", "ENVID=corp+2D1"],
                       rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Dora+2Bsales@corp.example"])
        self.wait_for("dora's message", lambda: len(self.mailbox_messages("dora@corp.example")) - before, 1)
        envelope, _ = self.mailbox_messages("dora@corp.example")[-1]
        # Postfix took them from mailroster and passed them on (RFC 3461 5.2), as it would not
        # have had mailroster not offered DSN.
        self.assertIn("RET=HDRS", envelope["params"])
        # Postfix decodes xtext and encodes it again: "+2D" is a "-", which needs no encoding
        # (and the fake MTA upper-cases MAIL's parameters).
        self.assertIn("ENVID=CORP-1", envelope["params"])
        params = dict(p.split("=", 1) for p in envelope["rcpt_params"]["dora@corp.example"])
        self.assertEqual(sorted(params["NOTIFY"].split(",")), ["FAILURE", "SUCCESS"])
        self.assertEqual(params["ORCPT"], "rfc822;Dora+2Bsales@corp.example")

    # ---- outbound: the company's Postfix sends through mailroster -------------------------

    def test_postfix_sends_out_through_mailroster(self):
        before = len(self.sink_files("internet"))
        with smtplib.SMTP("127.0.0.1", self.postfix_port, timeout=30) as s:
            s.sendmail("dora@corp.example", ["friend@example.net"],
                       message("friend@example.net", "from dora").replace("bob@example.org", "dora@corp.example"))
        def doras():  # smtp-sink writes its file as the message comes in: wait for the end
            found = []
            for name in self.sink_files("internet")[before:]:
                with open(name, "rb") as f:
                    dump = f.read()
                if b"Hello there." in dump:
                    found.append(dump)
            return found
        self.wait_for("dora's message at the internet", lambda: len(doras()), 1)
        dump = doras()[0]
        self.assertIn(b"X-Mail-Args: <dora@corp.example>", dump)
        self.assertIn(b"X-Rcpt-Args: <friend@example.net>", dump)
        self.assertIn(b"Subject: from dora", dump)
        self.assertIn(b"(mailroster) with ESMTPS", dump)  # Postfix's STARTTLS to mailroster
        self.assertEqual(self.discovered()["dora@corp.example"]["outbound_messages"], 1)

    # ---- smtp-sink as a destination -------------------------------------------------------

    def test_smtp_sink_destination_takes_the_users_mail_and_is_found_catch_all(self):
        before = len(self.sink_files("anything"))
        self.smtp_source(self.port, "-s", "3", "-m", "15", "-t", "dan@sink.example")
        self.wait_for("dan's messages", lambda: len(self.sink_files("anything")) - before, 15)
        # An address mailroster does not know is verified there: smtp-sink takes any local
        # part, so the domain is found catch-all, and its mail relayed but not counted.
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
            s.ehlo("client.example.org")
            s.mail("sender@example.org")
            self.assertEqual(s.rcpt("whoever@sink.example")[0], 250)
            self.assertEqual(s.data(message("whoever@sink.example"))[0], 250)
        self.assertNotIn("whoever@sink.example", self.discovered())
        out = subprocess.run([BINARY, "--config", self.config, "verify", "catch-all", "--json"],
                             capture_output=True, text=True, check=True)
        self.assertEqual([d["domain"] for d in json.loads(out.stdout)], ["sink.example"])


if __name__ == "__main__":
    BINARY, argv = databases.suite_arguments()
    smtp_gateway_test.BINARY = BINARY
    unittest.main(argv=argv, verbosity=2)
