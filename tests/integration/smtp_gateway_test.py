#!/usr/bin/env python3
"""End-to-end tests of the inbound SMTP gateway, run as a mail administrator would see it.

Starts `mailroster serve` on loopback with a throw-away TLS certificate, and downstream
"company mail servers" (fake_mta.py): one that knows some users, one catch-all, one that
drops connections, one that answers 421, one that is slow, and a port where nothing
listens. Mail is sent with Python's smtplib, raw sockets (for byte-exact protocol cases)
and swaks. Usage: smtp_gateway_test.py --binary build/mailroster
"""
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import smtplib
import ssl
import subprocess
import sys
import tempfile
import datetime
import time
import unittest
import urllib.error
import urllib.request

import databases
from certificates import self_signed
from databases import database_toml, new_database

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = None
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def message(to, subject="hello", body="Hello there.\r\n", extra=""):
    return ("From: Bob Sender <bob@example.org>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s.%f@example.org>\r\n%s"
            "\r\n%s" % (to, subject, subject.replace(" ", "."), time.time(), extra, body))


def recv_until(sock, marker=None, data=b""):
    """What sock says after data, until marker is in it or the peer closes (marker None: until
    it closes)."""
    while not (marker and marker in data):
        more = sock.recv(65536)
        if not more:
            break
        data += more
    return data


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_cli(db, *args):
    """Runs `mailroster --db db args...`; its output, or RuntimeError with its reason."""
    r = subprocess.run([BINARY, "--db", db] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stderr))
    return r.stdout


def start_serve(config, log_path, env=None):
    """Starts `mailroster serve`; returns the process, its log file and the ports it logged."""
    log = open(log_path, "w")
    proc = subprocess.Popen([BINARY, "--config", config, "serve"], stderr=log, stdout=log, env=env)
    deadline = time.time() + 10
    while time.time() < deadline:
        with open(log_path) as f:
            text = f.read()
        ports = {m.group(1): int(m.group(2)) for m in re.finditer(
            r"(inbound SMTP|admin HTTP|outbound SMTP)S? listening on 127\.0\.0\.1:(\d+)", text)}
        if len(ports) == 3:
            return proc, log, ports
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("serve did not start:\n" + text)


class ServeTestCase(unittest.TestCase):
    """A test that starts serve itself (start_serve: self.serve, self.log, self.log_path) in a
    directory of its own, self.dir; serve is killed if a test leaves it running."""
    PREFIX = "mailroster-"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix=self.PREFIX)
        self.serve = None

    def tearDown(self):
        if self.serve and self.serve.poll() is None:
            self.serve.kill()
            self.serve.wait()
        if self.serve:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()


def start_gateway(cls, config):
    """Starts serve for a test class: cls.serve, cls.log, cls.log_path and its three ports."""
    cls.log_path = os.path.join(cls.dir, "serve.log")
    cls.serve, cls.log, ports = start_serve(config, cls.log_path)
    cls.port, cls.admin_port, cls.outbound_port = \
        ports["inbound SMTP"], ports["admin HTTP"], ports["outbound SMTP"]


def stop_gateway(cls):
    cls.serve.terminate()
    cls.serve.wait(10)
    cls.log.close()


class Gateway(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mailroster-gw-")
        cls.procs = []
        cls.mtas = {}
        # The destinations' certificate (names 127.0.0.1, as the "verify" policy checks).
        cls.mta_cert, cls.mta_key = self_signed(cls.dir, "127.0.0.1", ip="127.0.0.1",
                                                files=("mta-cert.pem", "mta-key.pem"))
        for name, args in {
            "main": ["--accept", "alice,al,bob,carol,erin,frank,grace,henry,ivan,judy,kim,lou,ned,nora,pat,someone,"
                     "postmaster", "--delimiter", "+"],
            "catchall": ["--catch-all"],
            "drop": ["--mode", "drop"],
            "busy": ["--mode", "421"],
            "slow": ["--mode", "slow", "--delay", "3", "--accept", "sam"],
            "intl": ["--accept", "jürgen,renée,info", "--smtputf8"],  # offers SMTPUTF8
            "tls": ["--accept", "tina", "--starttls", cls.mta_cert + "," + cls.mta_key],
            "badtls": ["--accept", "bea", "--mode", "badtls"],  # offers STARTTLS, breaks it
            "dsn": ["--accept", "dora,dan", "--dsn"],  # offers DSN
            "reports": ["--catch-all", "--smtputf8"],  # [reports] relay: serve's own mail (notices)
        }.items():
            spool = os.path.join(cls.dir, "spool-" + name)
            p = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_mta.py"), "--spool", spool] + args,
                                 stdout=subprocess.PIPE, text=True)
            cls.procs.append(p)
            port = int(p.stdout.readline().split()[-1])
            cls.mtas[name] = (port, spool)
        dead_port = cls.dead_port = free_port()
        cls.admin_port = free_port()  # fixed, so that the CLI finds the running service

        cls.db = new_database(cls.dir)
        cls.cli("company", "add", "acme", "--tech-contact", "it@acme.example", "--relay-network", "127.0.0.1/32")
        for domain, dest in [("acme.example", cls.mtas["main"][0]), ("catchall.example", cls.mtas["catchall"][0]),
                             ("drop.example", cls.mtas["drop"][0]), ("busy.example", cls.mtas["busy"][0]),
                             ("slow.example", cls.mtas["slow"][0]), ("dead.example", dead_port),
                             ("intl.example", cls.mtas["intl"][0]), ("bücher.example", cls.mtas["intl"][0]),
                             ("tls.example", cls.mtas["tls"][0]), ("badtls.example", cls.mtas["badtls"][0]),
                             ("dsn.example", cls.mtas["dsn"][0])]:
            cls.cli("domain", "add", domain, "--company", "acme", "--destination", "127.0.0.1:%d" % dest)
        cls.cli("company", "add", "quiet")
        cls.cli("domain", "add", "quiet.example", "--company", "quiet", "--destination",
                "127.0.0.1:%d" % cls.mtas["main"][0])
        cls.cli("user", "add", "alice@acme.example", "--first-name", "Alice")
        cls.cli("alias", "add", "al@acme.example", "--user", "alice@acme.example")
        cls.cli("invalid", "add", "ghost@acme.example")
        cls.cli("user", "add", "jürgen@intl.example")
        cls.cli("user", "add", "zoë@acme.example")
        cls.cli("user", "add", "Info@Bücher.example")
        cls.cli("user", "add", "tina@tls.example")
        cls.cli("user", "add", "bea@badtls.example")
        cls.cli("user", "add", "dora@dsn.example")
        cls.cli("user", "add", "dan@dsn.example")
        cls.cli("discovery", "set", "--company", "acme", "enabled=true")
        cls.cli("company", "add", "outco", "--relay-network", "127.0.0.1/32")
        cls.cli("domain", "add", "out.example", "--company", "outco", "--destination",
                "127.0.0.1:%d" % cls.mtas["main"][0])
        cls.cli("discovery", "set", "--company", "outco", "enabled=true", "auto_add_outbound=true")

        cert, key = self_signed(cls.dir, "mailroster.test", files=("cert.pem", "key.pem"))
        config = os.path.join(cls.dir, "mailroster.toml")
        with open(config, "w") as f:
            f.write('[database]\n%s\n[admin]\nlisten = "127.0.0.1:%d"\n'
                    '[smtp]\ninbound_listen = "127.0.0.1:0"\nhostname = "mx.mailroster.test"\n'
                    'postmaster = "alice@acme.example"\n'
                    'max_message_size = 200000\ntls_cert = "%s"\ntls_key = "%s"\nidle_timeout = "20s"\n'
                    '[relay]\nconnect_timeout = "1s"\ncommand_timeout = "1s"\n'
                    '[outbound]\nlisten = "127.0.0.1:0"\nnext_hop = "127.0.0.1:%d, 127.0.0.1:%d"\n'
                    '[harvest]\nslow_after = 1000\nrefuse_after = 1000\n'  # tested in Limits
                    '[reports]\nrelay = "127.0.0.1:%d, 127.0.0.1:%d"\n'
                    % (database_toml(cls.db, cls.dir), cls.admin_port, cert, key, dead_port,
                       cls.mtas["main"][0], dead_port, cls.mtas["reports"][0]))
        cls.config = config
        cls.cert = cert  # the gateway's own (CN=mailroster.test): no CA of the destinations
        start_gateway(cls, config)

    @classmethod
    def tearDownClass(cls):
        stop_gateway(cls)
        for p in cls.procs:
            p.kill()
            p.wait()
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def cli(cls, *args):
        return run_cli(cls.db, *args)

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def settled(self):
        """Waits until serve has written the discovery counts of the mail it answered: they are
        posted before the reply and written on a queue of their own (the gauge counts them)."""
        for _ in range(500):
            m = re.search(r"^mailroster_discovery_writes_pending (\S+)$", self.metrics(), re.M)
            self.assertIsNotNone(m, "no discovery queue gauge in /metrics")
            if float(m.group(1)) == 0:
                return
            time.sleep(0.01)
        self.fail("discovery writes still pending after 5 s")

    def discovered(self):
        self.settled()
        return {d["address"]: d for d in json.loads(self.cli("discovery", "list", "--company", "acme", "--json"))}

    def spooled(self, name="main"):
        spool = self.mtas[name][1]
        if not os.path.isdir(spool):
            return []
        return sorted(f for f in os.listdir(spool) if f.endswith(".eml"))

    def read_spool(self, name, file):
        with open(os.path.join(self.mtas[name][1], file), "rb") as f:
            return f.read()

    def smtp(self, port=None):
        s = smtplib.SMTP("127.0.0.1", port or self.port, timeout=20)
        s.ehlo("client.example.org")
        return s

    def send(self, to, msg=None, sender="bob@example.org", port=None):
        """Sends one message; returns (rcpt code, data code, data text)."""
        with self.smtp(port) as s:
            s.mail(sender)
            code, text = s.rcpt(to)
            if code != 250:
                return code, None, text.decode()
            code2, text2 = s.data(msg if msg is not None else message(to))
            return code, code2, text2.decode()

    def raw(self, chunks, read_until=None, timeout=10):
        """Writes byte chunks on a raw connection; returns everything the server said."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        data = sock.recv(4096)
        for chunk in chunks:
            sock.sendall(chunk)
            time.sleep(0.05)
        sock.settimeout(timeout)
        try:
            data = recv_until(sock, read_until, data)
        except socket.timeout:
            pass
        sock.close()
        return data.decode()

    def metrics(self):
        return urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port).read().decode()

    def test_metrics_follow_the_prometheus_rules(self):
        # Some traffic first (every counter is there from the start: service_test checks it).
        self.send("alice@acme.example")
        self.send("nobody@elsewhere.example")
        help_, types = {}, {}
        for line in self.metrics().splitlines():
            if line.startswith("# HELP "):
                name, text = line[len("# HELP "):].split(" ", 1)
                help_[name] = text
            elif line.startswith("# TYPE "):
                name, kind = line[len("# TYPE "):].split(" ")
                types[name] = kind
            else:
                m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
                self.assertIsNotNone(m, line)
                self.assertIn(m.group(1), types, "a sample before its TYPE: " + line)
                float(m.group(3))
        self.assertGreater(len(types), 25)
        for name, kind in types.items():
            self.assertTrue(help_.get(name), name + " says nothing of itself (HELP)")
            self.assertIn(kind, ("counter", "gauge"), name)
            # A counter's name ends in _total, and only a counter's (Prometheus' naming rules).
            self.assertEqual(name.endswith("_total"), kind == "counter", f"{name} is a {kind}")

    # ---- recipients -----------------------------------------------------------------------

    def test_user_is_delivered_with_the_exact_bytes(self):
        before = self.spooled()
        body = "Line one.\r\n.leading dot survives\r\n..two dots\r\nlast line\r\n"
        msg = message("alice@acme.example", "exact bytes", body)
        rcpt, code, text = self.send("alice@acme.example", msg)
        self.assertEqual((rcpt, code), (250, 250), text)
        self.assertIn("queued as FAKE", text)  # the destination's own answer is passed on
        new = [f for f in self.spooled() if f not in before]
        self.assertEqual(len(new), 1)
        got = self.read_spool("main", new[0])
        self.assertTrue(got.startswith(b"Received: from client.example.org ([127.0.0.1])\r\n"), got[:200])
        self.assertIn(b"by mx.mailroster.test (mailroster) with ESMTP", got)
        self.assertTrue(got.endswith(msg.encode()), got)
        env = json.load(open(os.path.join(self.mtas["main"][1], new[0].replace(".eml", ".json"))))
        self.assertEqual((env["from"], env["to"]), ("bob@example.org", ["alice@acme.example"]))
        self.assertNotIn("SMTPUTF8", env["params"])  # not asked for, not passed on
        self.assertFalse(env["tls"])  # the destination offers no STARTTLS
        self.assertNotIn("alice@acme.example", self.discovered())  # users are not counted

    def test_bare_envelope_addresses_are_taken_and_relayed_in_brackets(self):
        # "MAIL FROM:bob@example.org", as printers and old scripts send it: taken by default
        # ([smtp] strict_envelopes = false), as Postfix takes it; the destination gets RFC 5321.
        before = self.spooled()
        msg = message("alice@acme.example", "no brackets")
        with self.smtp() as s:
            self.assertEqual(s.docmd("MAIL", "FROM:Bob@Example.org SIZE=%d" % len(msg))[0], 250)
            self.assertEqual(s.docmd("RCPT", "TO: alice@acme.example")[0], 250)
            code, text = s.docmd("RCPT", "TO:Someone <x@acme.example>")  # not guessed at
            self.assertEqual(code, 501, text)
            self.assertEqual(s.data(msg)[0], 250)
        new = [f for f in self.spooled() if f not in before]
        self.assertEqual(len(new), 1)
        with open(os.path.join(self.mtas["main"][1], new[0].replace(".eml", ".json"))) as f:
            env = json.load(f)
        self.assertEqual((env["from"], env["to"]), ("Bob@example.org", ["alice@acme.example"]))

    def test_postmaster_without_a_domain_goes_to_the_configured_address(self):
        # RFC 5321 4.5.1: RCPT TO:<Postmaster> (any case, no domain) must be accepted.
        before = self.spooled()
        rcpt, code, text = self.send("Postmaster", message("Postmaster", "to the postmaster"))
        self.assertEqual((rcpt, code), (250, 250), text)
        new = [f for f in self.spooled() if f not in before]
        self.assertEqual(len(new), 1)
        with open(os.path.join(self.mtas["main"][1], new[0].replace(".eml", ".json"))) as f:
            self.assertEqual(json.load(f)["to"], ["alice@acme.example"])

    @contextlib.contextmanager
    def another_serve(self, name, extra=""):
        """A second `serve` on the same database with its own defaults plus extra TOML; yields
        its inbound SMTP port."""
        config = os.path.join(self.dir, name + ".toml")
        with open(config, "w") as f:
            f.write('[database]\n%s\n[admin]\nlisten = "127.0.0.1:0"\n[smtp]\n'
                    'inbound_listen = "127.0.0.1:0"\n[outbound]\nlisten = "127.0.0.1:0"\n%s'
                    % (database_toml(self.db, self.dir), extra))
        proc, log, ports = start_serve(config, os.path.join(self.dir, name + ".log"))
        try:
            yield ports["inbound SMTP"]
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()

    def test_postmaster_without_a_domain_and_none_configured_is_550_saying_so(self):
        with self.another_serve("no-postmaster") as port, self.smtp(port) as s:
            s.mail("bob@example.org")
            code, text = s.rcpt("postmaster")
            self.assertEqual(code, 550)
            self.assertIn(b"5.1.1", text)
            self.assertIn(b"no postmaster mailbox", text)
            self.assertEqual(s.rcpt("alice@acme.example")[0], 250)  # the session goes on

    # ---- TLS towards the destinations (STARTTLS, RFC 3207) --------------------------------

    def envelope_of_new(self, name, before):
        new = [f for f in self.spooled(name) if f not in before]
        self.assertEqual(len(new), 1, new)
        with open(os.path.join(self.mtas[name][1], new[0].replace(".eml", ".json"))) as f:
            return json.load(f)

    def test_relay_uses_starttls_where_the_destination_offers_it(self):
        tls_before = float(re.search(r"^mailroster_relay_tls_connects_total (\S+)$", self.metrics(), re.M).group(1))
        before = self.spooled("tls")
        rcpt, code, text = self.send("tina@tls.example")
        self.assertEqual((rcpt, code), (250, 250), text)
        self.assertTrue(self.envelope_of_new("tls", before)["tls"])
        tls_after = float(re.search(r"^mailroster_relay_tls_connects_total (\S+)$", self.metrics(), re.M).group(1))
        self.assertGreater(tls_after, tls_before)

    def test_broken_tls_is_retried_in_the_clear_under_the_default_policy(self):
        before = self.spooled("badtls")
        rcpt, code, text = self.send("bea@badtls.example")
        self.assertEqual((rcpt, code), (250, 250), text)
        self.assertFalse(self.envelope_of_new("badtls", before)["tls"])

    def test_required_tls_refuses_with_451_and_verify_checks_the_certificate(self):
        before = self.spooled("tls")
        with self.another_serve("tls-verify", '[relay]\ntls = "verify"\ntls_ca_file = "%s"\n' % self.mta_cert) as port:
            rcpt, code, text = self.send("tina@tls.example", port=port)
            self.assertEqual((rcpt, code), (250, 250), text)
            self.assertTrue(self.envelope_of_new("tls", before)["tls"])
            rcpt, code, text = self.send("bea@badtls.example", port=port)  # broken: no retry in the clear
            self.assertEqual((rcpt, code), (250, 451), text)
            self.assertIn("TLS handshake failed", text)
            rcpt, code, text = self.send("alice@acme.example", port=port)  # offers no STARTTLS
            self.assertEqual((rcpt, code), (250, 451), text)
            self.assertIn("TLS is required", text)
        # A certificate the configured CAs did not sign.
        with self.another_serve("tls-wrong-ca", '[relay]\ntls = "verify"\ntls_ca_file = "%s"\n' % self.cert) as port:
            rcpt, code, text = self.send("tina@tls.example", port=port)
            self.assertEqual((rcpt, code), (250, 451), text)
            self.assertIn("certificate verify failed", text)
        # "encrypt" takes any certificate, but never the clear.
        with self.another_serve("tls-encrypt", '[relay]\ntls = "encrypt"\n') as port:
            self.assertEqual(self.send("tina@tls.example", port=port)[:2], (250, 250))
            self.assertEqual(self.send("alice@acme.example", port=port)[:2], (250, 451))
        self.assertEqual(len([f for f in self.spooled("tls") if f not in before]), 2)

    def test_domain_check_reports_what_the_gateway_finds_at_the_destination(self):
        def check(domain, config=None):
            where = ["--config", config] if config else ["--db", self.db]
            return subprocess.run([BINARY] + where + ["domain", "check", domain, "--json"],
                                  capture_output=True, text=True)
        r = check("tls.example")
        self.assertEqual(r.returncode, 0, r.stderr)
        found = json.loads(r.stdout)
        self.assertTrue(found["connected"])
        self.assertIn("PIPELINING", found["extensions"])  # as said again after STARTTLS
        self.assertEqual(found["tls_policy"], "may")
        self.assertTrue(found["tls"]["active"])
        self.assertTrue(found["tls"]["version"].startswith("TLSv1."))
        self.assertIn("CN=127.0.0.1", found["tls"]["certificate"])
        self.assertFalse(found["tls"]["trusted"])  # self-signed: not among the system's CAs
        self.assertIn("self-signed", found["tls"]["untrusted_because"])
        self.assertTrue(found["tls"]["names_host"])
        self.assertTrue(found["verifies_recipients"])
        self.assertFalse(found["accepts_any_address"])
        # With its CA configured, the same certificate is trusted.
        config = os.path.join(self.dir, "check-verify.toml")
        with open(config, "w") as f:
            f.write('[database]\n%s\n[relay]\ntls = "verify"\ntls_ca_file = "%s"\n'
                    % (database_toml(self.db, self.dir), self.mta_cert))
        r = check("tls.example", config)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(json.loads(r.stdout)["tls"]["trusted"])
        # A catch-all destination, one without TLS, and one that is down.
        self.assertTrue(json.loads(check("catchall.example").stdout)["accepts_any_address"])
        text = subprocess.run([BINARY, "--db", self.db, "domain", "check", "acme.example"],
                              capture_output=True, text=True).stdout
        self.assertIn("TLS         not used", text)
        self.assertIn("=> recipients are verified by callout", text)
        r = check("dead.example")
        self.assertEqual(r.returncode, 1)
        self.assertFalse(json.loads(r.stdout)["connected"])
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("cannot take mail", r.stderr)
        # Every domain of a company, or all of them: one line each; exit 1 naming those that fail.
        r = subprocess.run([BINARY, "--db", self.db, "domain", "check", "--company", "quiet"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^DOMAIN +SERVER +SESSION +TLS +CALLOUTS")
        self.assertRegex(r.stdout, r"\nquiet\.example +127\.0\.0\.1:%d +ready +- +recipients are verified"
                         % self.mtas["main"][0])
        r = subprocess.run([BINARY, "--config", self.config, "domain", "check", "--all", "--json"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 1, r.stderr)
        found = {d["domain"]: d for d in json.loads(r.stdout)}
        self.assertEqual(set(found), {d["name"] for d in json.loads(self.cli("domain", "list", "--json"))})
        self.assertTrue(found["acme.example"]["connected"] and found["out.example"]["connected"])
        self.assertFalse(found["dead.example"]["connected"])
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertRegex(r.stderr, r"\d+ of %d domains cannot take mail now: .*dead\.example" % len(found))
        self.assertNotIn("acme.example", r.stderr)
        bad = subprocess.run([BINARY, "--db", self.db, "domain", "check"], capture_output=True, text=True)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("give a domain, --company or --all", bad.stderr)

    def test_a_destination_of_several_servers_is_tried_in_order(self):
        """A domain's mail servers are tried in the order given: one that is down, or greets
        with 421, hands the callout and the message to the next; it is then passed over for a
        while ([relay] server_retry), so it costs one attempt, not one per message."""
        busy, main = self.mtas["busy"][0], self.mtas["main"][0]
        servers = "127.0.0.1:%d, 127.0.0.1:%d, 127.0.0.1:%d" % (self.dead_port, busy, main)
        self.cli("domain", "add", "failover.example", "--company", "acme", "--destination",
                 "127.0.0.1:%d 127.0.0.1:%d,127.0.0.1:%d" % (self.dead_port, busy, main))
        listed = {d["name"]: d for d in json.loads(self.cli("domain", "list", "--json"))}
        self.assertEqual(listed["failover.example"]["destination"], servers)
        failovers = lambda: float(re.search(r"^mailroster_relay_failovers_total (\S+)$", self.metrics(), re.M).group(1))
        before_failovers, before = failovers(), self.spooled()
        rcpt, data, text = self.send("carol@failover.example")  # a callout, then the message
        self.assertEqual((rcpt, data), (250, 250), text)
        new = [f for f in self.spooled() if f not in before]
        self.assertEqual(len(new), 1)
        env = json.load(open(os.path.join(self.mtas["main"][1], new[0].replace(".eml", ".json"))))
        self.assertEqual(env["to"], ["carol@failover.example"])
        self.assertGreaterEqual(failovers() - before_failovers, 2)  # the callout and the relay
        self.assertGreaterEqual(float(re.search(r"^mailroster_relay_servers_passed_over (\S+)$",
                                                self.metrics(), re.M).group(1)), 2)
        self.assertIn("127.0.0.1:%d: 421" % busy, self.log_text())
        self.assertIn("(a server of %s): tried after the others for 60 s" % servers, self.log_text())
        self.assertEqual(self.send("zed@failover.example")[0], 550)  # main's answer, not busy's 421

        # domain check tries every server and says which one takes the mail now.
        r = subprocess.run([BINARY, "--db", self.db, "domain", "check", "failover.example", "--json"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        found = json.loads(r.stdout)
        self.assertEqual([s["server"] for s in found["servers"]], [x.strip() for x in servers.split(",")])
        self.assertEqual([s["connected"] for s in found["servers"]], [False, False, True])
        self.assertIn("421", found["servers"][1]["session"])
        self.assertEqual(found["server"], "127.0.0.1:%d" % main)
        self.assertTrue(found["connected"] and found["verifies_recipients"])
        text = subprocess.run([BINARY, "--db", self.db, "domain", "check", "failover.example"],
                              capture_output=True, text=True).stdout
        self.assertIn("  server 127.0.0.1:%d (mail goes here now)\n    session     ready" % main, text)

        # No server that takes a session: 451, naming each, and nothing counted.
        self.cli("domain", "add", "nowhere.example", "--company", "acme", "--destination",
                 "127.0.0.1:%d, 127.0.0.1:%d" % (self.dead_port, busy))
        rcpt, _, text = self.send("someone@nowhere.example")
        self.assertEqual(rcpt, 451, text)
        self.assertIn("127.0.0.1:%d: " % self.dead_port, text)
        self.assertIn("127.0.0.1:%d: 421" % busy, text)
        self.assertNotIn("someone@nowhere.example", self.discovered())
        r = subprocess.run([BINARY, "--db", self.db, "domain", "check", "nowhere.example"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)

        # A server listed twice, or a bad one among good ones, is refused with the reason.
        for bad, why in [("127.0.0.1:%d, 127.0.0.1:%d" % (main, main), "listed twice"),
                         ("127.0.0.1:%d, bad_host" % main, "bad_host")]:
            r = subprocess.run([BINARY, "--db", self.db, "domain", "update", "failover.example",
                                "--destination", bad], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(why, r.stderr)
        listed = {d["name"]: d for d in json.loads(self.cli("domain", "list", "--json"))}
        self.assertEqual(listed["failover.example"]["destination"], servers)

    def test_bad_tls_settings_stop_serve_with_a_reason(self):
        config = os.path.join(self.dir, "bad-tls.toml")
        for extra, reason in [('[relay]\ntls = "always"\n', "none, may, encrypt, verify"),
                              ('[relay]\ntls = "verify"\ntls_ca_file = "/nonexistent.pem"\n', "/nonexistent.pem")]:
            with open(config, "w") as f:
                f.write('[database]\n%s\n%s' % (database_toml(self.db, self.dir), extra))
            r = subprocess.run([BINARY, "--config", config, "serve"], capture_output=True, text=True, timeout=20)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(reason, r.stderr)

    # ---- delivery status notifications (DSN, RFC 3461) -------------------------------------

    def wait_spooled(self, name, before, count=1):
        deadline = time.time() + 10
        while len(self.spooled(name)) < len(before) + count:
            self.assertLess(time.time(), deadline, "nothing arrived at %s" % name)
            time.sleep(0.05)
        new = [f for f in self.spooled(name) if f not in before]
        return [(json.load(open(os.path.join(self.mtas[name][1], f[:-4] + ".json"))),
                 self.read_spool(name, f)) for f in new]

    def test_dsn_parameters_go_on_to_a_next_hop_that_offers_dsn(self):
        before, notices = self.spooled("dsn"), self.spooled("reports")
        with self.smtp() as s:
            self.assertIn("dsn", s.esmtp_features)
            s.sendmail("bob@example.org", ["dora@dsn.example", "dan@dsn.example"],
                       message("dora@dsn.example", "dsn on"),
                       mail_options=["RET=HDRS", "ENVID=QQ+2B314"],
                       rcpt_options=["NOTIFY=success,FAILURE", "ORCPT=rfc822;Dora+2Bsales@dsn.example"])
        (envelope, _), = self.wait_spooled("dsn", before)
        self.assertIn("RET=HDRS", envelope["params"])
        self.assertIn("ENVID=QQ+2B314", envelope["params"])
        for rcpt in ("dora@dsn.example", "dan@dsn.example"):
            self.assertEqual(envelope["rcpt_params"][rcpt],
                             ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Dora+2Bsales@dsn.example"])
        time.sleep(0.3)
        self.assertEqual(self.spooled("reports"), notices)  # the next hop reports: no notice here
        # A UTF-8 ORCPT (RFC 6533) does not go to a next hop without SMTPUTF8; NOTIFY does.
        before = self.spooled("dsn")
        with self.smtp() as s:
            s.sendmail("bob@example.org", ["dora@dsn.example"], message("dora@dsn.example", "utf8"),
                       mail_options=["SMTPUTF8"],
                       rcpt_options=["NOTIFY=DELAY", "ORCPT=utf-8;j\u00fcrgen@dsn.example"])
        (envelope, _), = self.wait_spooled("dsn", before)
        self.assertEqual(envelope["rcpt_params"]["dora@dsn.example"], ["NOTIFY=DELAY"])

    def test_success_asked_of_a_next_hop_without_dsn_gets_a_relayed_notice(self):
        before, notices = self.spooled(), self.spooled("reports")
        msg = message("alice@acme.example", "dsn relayed", "the body\r\n")
        with self.smtp() as s:
            s.sendmail("bob@example.org", ["alice@acme.example"], msg,
                       mail_options=["ENVID=env+2D7"],
                       rcpt_options=["NOTIFY=SUCCESS", "ORCPT=rfc822;alice@acme.example"])
        (delivered, _), = self.wait_spooled("main", before)
        self.assertEqual(delivered["rcpt_params"]["alice@acme.example"], [])  # not passed on
        self.assertNotIn("ENVID=ENV+2D7", delivered["params"])
        (envelope, notice), = self.wait_spooled("reports", notices)
        self.assertEqual(envelope["from"], "")  # from the null sender
        self.assertEqual(envelope["to"], ["bob@example.org"])
        text = notice.decode()
        self.assertIn("Content-Type: multipart/report; report-type=delivery-status;", text)
        self.assertIn("Auto-Submitted: auto-replied\r\n", text)
        self.assertIn("Reporting-MTA: dns; mx.mailroster.test\r\nOriginal-Envelope-Id: env-7\r\n", text)
        self.assertIn("Final-Recipient: rfc822; alice@acme.example\r\n"
                      "Original-Recipient: rfc822;alice@acme.example\r\n"
                      "Action: relayed\r\nStatus: 2.0.0\r\nRemote-MTA: dns; 127.0.0.1\r\n", text)
        # RET was not FULL: the headers come back, not the body.
        self.assertIn("Content-Type: text/rfc822-headers\r\n\r\nFrom: Bob Sender", text)
        self.assertIn("Subject: dsn relayed\r\n", text)
        self.assertNotIn("the body", text)
        # No notice when none was asked for, or to the null sender.
        for sender, notify in (("bob@example.org", "NOTIFY=FAILURE,DELAY"), ("", "NOTIFY=SUCCESS")):
            with self.smtp() as s:
                s.sendmail(sender, ["alice@acme.example"], message("alice@acme.example", "no notice"),
                           rcpt_options=[notify])
        time.sleep(0.5)
        self.assertEqual(len(self.spooled("reports")), len(notices) + 1)

    def test_a_relayed_notice_to_a_utf8_sender_is_internationalized(self):
        """RFC 6533: the notice for an SMTPUTF8 sender goes to it with SMTPUTF8, as
        message/global-delivery-status with its original header section."""
        notices = self.spooled("reports")
        with self.smtp() as s:
            s.sendmail("ren\u00e9@example.org", ["j\u00fcrgen@intl.example"],  # SMTPUTF8, no DSN
                       message("j\u00fcrgen@intl.example", "utf8 relayed").encode(),
                       mail_options=["SMTPUTF8"], rcpt_options=["NOTIFY=SUCCESS"])
        (envelope, notice), = self.wait_spooled("reports", notices)
        self.assertEqual(envelope["to"], ["ren\u00e9@example.org"])
        self.assertIn("SMTPUTF8", envelope["params"])
        text = notice.decode()
        self.assertIn("To: <ren\u00e9@example.org>\r\n", text)
        self.assertIn("Content-Type: message/global-delivery-status\r\n", text)
        self.assertIn("Final-Recipient: utf-8; j\u00fcrgen@intl.example\r\nAction: relayed\r\n", text)
        self.assertIn("Content-Type: message/global-headers\r\n\r\nFrom: Bob Sender", text)

    def test_bad_dsn_parameters_are_refused(self):
        said = self.raw([b"EHLO client.example\r\n",
                         b"MAIL FROM:<bob@example.org> RET=ALL\r\n",
                         b"MAIL FROM:<bob@example.org> ENVID=a=b\r\n",
                         b"MAIL FROM:<bob@example.org> RET=FULL RET=HDRS\r\n",
                         b"MAIL FROM:<bob@example.org> RET=full ENVID=x+41\r\n",
                         b"RCPT TO:<alice@acme.example> NOTIFY=NEVER,SUCCESS\r\n",
                         b"RCPT TO:<alice@acme.example> NOTIFY=SUCCESS,SUCCESS\r\n",
                         b"RCPT TO:<alice@acme.example> ORCPT=alice@acme.example\r\n",
                         b"RCPT TO:<alice@acme.example> ORCPT=rfc822;a+zz@acme.example\r\n",
                         b"RCPT TO:<alice@acme.example> NOTIFY=never ORCPT=rfc822;alice@acme.example\r\n",
                         b"QUIT\r\n"], read_until=b"221 ")
        replies = [l for l in said.split("\r\n") if l[:3].isdigit() and l[3:4] == " "][1:]
        self.assertEqual([r[:9] for r in replies],
                         ["250 START", "501 5.5.4", "501 5.5.4", "501 5.5.4", "250 2.1.0",
                          "501 5.5.4", "501 5.5.4", "501 5.5.4", "501 5.5.4", "250 2.1.5", "221 2.0.0"],
                         said)
        # Without EHLO there are no parameters.
        said = self.raw([b"HELO client.example\r\n", b"MAIL FROM:<bob@example.org>\r\n",
                         b"RCPT TO:<alice@acme.example> NOTIFY=SUCCESS\r\n", b"QUIT\r\n"],
                        read_until=b"221 ")
        self.assertIn("555 5.5.4 parameters need EHLO", said)

    # ---- internationalised mail (SMTPUTF8, RFC 6531) --------------------------------------

    def send_utf8(self, to, subject="grüße", sender="bob@example.org"):
        """Sends with MAIL ... SMTPUTF8 and a UTF-8 header; returns (rcpt code, data code, text)."""
        msg = message(to, subject).encode("utf-8")
        with self.smtp() as s:
            self.assertTrue(s.has_extn("smtputf8"))
            s.mail(sender, ["SMTPUTF8"])
            code, text = s.rcpt(to)
            if code != 250:
                return code, None, text.decode()
            code2, text2 = s.data(msg)
            return code, code2, text2.decode()

    def test_non_ascii_addresses_need_smtputf8_declared(self):
        out = self.raw([b"EHLO x\r\n", "MAIL FROM:<björn@example.org>\r\n".encode(),
                        b"MAIL FROM:<bob@example.org>\r\n", "RCPT TO:<jürgen@intl.example>\r\n".encode(),
                        b"RSET\r\nMAIL FROM:<bob@example.org> SMTPUTF8=yes\r\n", b"QUIT\r\n"], read_until=b"221")
        self.assertIn("250-SMTPUTF8", out)
        self.assertEqual(out.count("553 5.6.7 must declare SMTPUTF8 to send a non-ASCII address"), 2, out)
        self.assertIn("501 5.5.4 SMTPUTF8 takes no value", out)

    def test_utf8_user_is_relayed_with_smtputf8(self):
        before = self.spooled("intl")
        rcpt, code, text = self.send_utf8("jürgen@intl.example", sender="björn@example.org")
        self.assertEqual((rcpt, code), (250, 250), text)
        new = [f for f in self.spooled("intl") if f not in before]
        self.assertEqual(len(new), 1)
        env = json.load(open(os.path.join(self.mtas["intl"][1], new[0].replace(".eml", ".json"))))
        self.assertEqual((env["from"], env["to"]), ("björn@example.org", ["jürgen@intl.example"]))
        self.assertIn("SMTPUTF8", env["params"])
        got = self.read_spool("intl", new[0])
        self.assertIn(b"(mailroster) with UTF8SMTP id", got)  # RFC 6531 4.3
        self.assertIn("Subject: grüße".encode(), got)

    def test_utf8_mail_to_a_destination_without_smtputf8_is_refused_not_downgraded(self):
        before = self.spooled()
        rcpt, code, text = self.send_utf8("zoë@acme.example")  # a user: no callout
        self.assertEqual((rcpt, code), (250, 550), text)
        self.assertIn("5.6.7", text)
        self.assertIn("does not support SMTPUTF8", text)
        # An all-ASCII message needs no SMTPUTF8 there, even when the client declared it.
        rcpt, code, text = self.send_utf8("alice@acme.example", subject="plain")
        self.assertEqual((rcpt, code), (250, 250), text)
        new = [f for f in self.spooled() if f not in before]
        self.assertEqual(len(new), 1)
        env = json.load(open(os.path.join(self.mtas["main"][1], new[0].replace(".eml", ".json"))))
        self.assertEqual(env["to"], ["alice@acme.example"])
        self.assertNotIn("SMTPUTF8", env["params"])

    def test_utf8_address_is_verified_with_smtputf8_where_the_destination_offers_it(self):
        rcpt, code, text = self.send_utf8("renée@intl.example")
        self.assertEqual((rcpt, code), (250, 250), text)
        self.assertEqual(len(self.discovered()["renée@intl.example"]["clean_inbound"]), 1)
        rcpt, _, text = self.send_utf8("rené@intl.example")  # the destination says no
        self.assertEqual(rcpt, 550)
        self.assertIn("5.1.1", text)
        # A destination without SMTPUTF8 could never take mail for it.
        rcpt, _, text = self.send_utf8("renée@acme.example")
        self.assertEqual(rcpt, 553)
        self.assertIn("5.6.7", text)
        self.assertNotIn("renée@acme.example", self.discovered())

    def test_internationalised_domain_matches_in_either_form(self):
        users = {u["address"] for u in json.loads(self.cli("user", "list", "--company", "acme", "--json"))}
        self.assertIn("Info@xn--bcher-kva.example", users)  # kept as A-labels
        before = self.spooled("intl")
        for to in ["info@bücher.example", "INFO@xn--bcher-kva.example"]:
            rcpt, code, text = self.send_utf8(to, subject="ascii")
            self.assertEqual((rcpt, code), (250, 250), to + ": " + text)
        new = [f for f in self.spooled("intl") if f not in before]
        self.assertEqual(len(new), 2)
        for f in new:  # relayed with the domain in A-labels
            env = json.load(open(os.path.join(self.mtas["intl"][1], f.replace(".eml", ".json"))))
            self.assertEqual([t.lower() for t in env["to"]], ["info@xn--bcher-kva.example"])

    def test_alias_is_accepted_without_callout(self):
        self.assertEqual(self.send("AL@acme.example")[:2], (250, 250))

    def test_unknown_but_valid_address_is_delivered_and_counted(self):
        before = self.spooled()
        rcpt, code, text = self.send("bob@acme.example")
        self.assertEqual((rcpt, code), (250, 250), text)
        self.assertEqual(len(self.spooled()) - len(before), 1)
        bob = self.discovered()["bob@acme.example"]
        self.assertGreaterEqual(len(bob["clean_inbound"]), 1)

    def test_a_sub_address_is_its_users_and_counts_as_the_address_without_it(self):
        # RFC 5233 ([smtp] recipient_delimiter, "+" by default): alice+news@ is alice's. Taken
        # without a callout, relayed as written (the destination files it).
        before = self.spooled()
        self.assertEqual(self.send("Alice+News@acme.example")[:2], (250, 250))
        new = [f for f in self.spooled() if f not in before]
        self.assertEqual(len(new), 1)
        env = json.load(open(os.path.join(self.mtas["main"][1], new[0].replace(".eml", ".json"))))
        self.assertEqual(env["to"], ["Alice+News@acme.example"])
        self.assertEqual(self.send("al+list@acme.example")[:2], (250, 250))  # an alias's too
        rcpt, _, text = self.send("ghost+x@acme.example")  # marked invalid, with any extension
        self.assertEqual(rcpt, 550)
        self.assertIn("marked invalid", text)
        # No callout: a destination without sub-addressing refuses it when the message comes,
        # and the client hears that refusal (nothing is lost).
        rcpt, code, text = self.send("dora+x@dsn.example")
        self.assertEqual((rcpt, code), (250, 550), text)
        # An address nobody has yet: asked of the destination as written, and counted without
        # its extension: one discovered address, not one per extension.
        self.assertEqual(self.send("kim+a@acme.example")[:2], (250, 250))
        self.assertEqual(self.send("kim+b@acme.example")[:2], (250, 250))
        found = self.discovered()
        self.assertEqual(len(found["kim@acme.example"]["clean_inbound"]), 2)
        self.assertEqual([a for a in found if "+" in a], [])
        self.assertNotIn("alice@acme.example", found)
        # A sender alice+news@ is alice (no new user); lou+x@ is discovered as lou@.
        self.assertEqual(self.send_outbound("alice+news@acme.example")[0], 250)
        self.assertEqual(self.send_outbound("lou+x@acme.example")[0], 250)
        found = self.discovered()
        self.assertEqual(found["lou@acme.example"]["outbound_messages"], 1)
        self.assertEqual([a for a in found if "+" in a or a.startswith("alice")], [])

    def test_address_the_destination_rejects_gets_550_and_is_not_delivered(self):
        before = self.spooled()
        rcpt, _, text = self.send("nobody@acme.example")
        self.assertEqual(rcpt, 550)
        self.assertIn("5.1.1", text)
        self.assertIn("user unknown", text)
        self.assertEqual(self.spooled(), before)
        self.assertNotIn("nobody@acme.example", self.discovered())

    def test_invalid_address_is_rejected_as_marked_invalid(self):
        rcpt, _, text = self.send("ghost@acme.example")
        self.assertEqual(rcpt, 550)
        self.assertIn("5.1.1", text)
        self.assertIn("marked invalid", text)

    def test_unregistered_domain_is_relay_denied(self):
        rcpt, _, text = self.send("someone@not-a-customer.example")
        self.assertEqual(rcpt, 550)
        self.assertIn("5.7.1", text)
        self.assertIn("relay access denied", text)

    def test_postmaster_at_a_domain_is_taken_even_with_discovery_off(self):
        # RFC 5321 4.5.1: postmaster at every domain served MUST be supported. quiet has
        # discovery off and no such user: asked of the destination, relayed, never counted.
        before = self.spooled()
        rcpt, code, text = self.send("PostMaster@Quiet.example")
        self.assertEqual((rcpt, code), (250, 250), text)
        self.assertEqual(len(self.spooled()), len(before) + 1)
        self.settled()
        self.assertEqual(json.loads(self.cli("discovery", "list", "--company", "quiet", "--json")), [])
        # Any other unknown address there is still refused without a callout.
        self.assertEqual(self.send("nobody@quiet.example")[0], 550)

    def test_discovery_off_means_unknown_is_rejected_without_callout(self):
        rcpt, _, text = self.send("alice@quiet.example")
        self.assertEqual(rcpt, 550)
        self.assertIn("5.1.1", text)
        self.assertIn("user unknown", text)

    def test_destination_down_gives_451_and_records_nothing(self):
        for to in ["someone@dead.example", "someone@drop.example", "someone@busy.example",
                   "sam@slow.example"]:
            rcpt, _, text = self.send(to)
            self.assertEqual(rcpt, 451, to + ": " + text)
            self.assertRegex(text, r"^4\.4\.\d ")
            self.assertNotIn(to, self.discovered())

    def test_gtube_is_rejected_and_not_delivered(self):
        before = self.spooled()
        rcpt, code, text = self.send("alice@acme.example",
                                     message("alice@acme.example", "spam", GTUBE + "\r\n"))
        self.assertEqual((rcpt, code), (250, 550), text)
        self.assertIn("5.7.1", text)
        self.assertIn("GTUBE", text)
        self.assertEqual(self.spooled(), before)

    def test_third_clean_message_within_30_days_makes_the_address_discovered(self):
        for i in range(1, 4):
            self.assertEqual(self.send("carol@acme.example")[:2], (250, 250))
            carol = self.discovered()["carol@acme.example"]
            self.assertEqual(len(carol["clean_inbound"]), i)
            if i < 3:
                self.assertIsNone(carol["discovered_at"])
        self.assertIsNotNone(carol["discovered_at"])
        found = json.loads(self.cli("discovery", "list", "--company", "acme", "--search", "CAROL@ACME", "--json"))
        self.assertEqual([d["address"] for d in found], ["carol@acme.example"])
        audit = json.loads(self.cli("audit", "list", "--company", "acme", "--json"))
        self.assertTrue(any(e["action"] == "discovered.add" and e["object"] == "carol@acme.example"
                            and e["actor"] == "discovery" for e in audit))

    def test_discovered_and_untouched_for_3_weeks_then_550_marked_invalid(self):
        for _ in range(3):
            self.assertEqual(self.send("henry@acme.example")[:2], (250, 250))
        self.assertIsNotNone(self.discovered()["henry@acme.example"]["discovered_at"])
        at = time.time() + 22 * 86400
        if time.gmtime(at).tm_wday == 3:  # keep Thursday's reports out of this test
            at += 86400
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
        out = self.cli("maintain", "--at", stamp, "--force")  # the running serve holds the lease
        self.assertIn("expired henry@acme.example -> became_invalid", out)
        rcpt, _, text = self.send("henry@acme.example")  # the running gateway sees it at once
        self.assertEqual(rcpt, 550)
        self.assertIn("5.1.1", text)
        self.assertIn("marked invalid", text)
        self.assertIn("henry@acme.example", self.cli("invalid", "list", "--company", "acme"))

    def test_administrator_creates_a_user_from_a_discovered_address(self):
        for _ in range(3):
            self.assertEqual(self.send("ivan@acme.example")[:2], (250, 250))
        self.settled()  # the counts are written after the replies, on a queue of their own
        self.cli("discovery", "create-user", "ivan@acme.example", "--company", "acme",
                 "--first-name", "Ivan", "--surname", "Petrov")
        ivan = json.loads(self.cli("user", "show", "ivan@acme.example", "--json"))
        self.assertEqual((ivan["first_name"], ivan["role"], ivan["source"]), ("Ivan", "silent_user", "discovery"))
        self.assertNotIn("ivan@acme.example", self.discovered())
        before = self.metrics()
        self.assertEqual(self.send("ivan@acme.example")[:2], (250, 250))  # now a user: no callout
        self.assertEqual(re.findall(r'result="user"} (\d+)', before)[0] if 'result="user"' in before else "0",
                         str(int(re.findall(r'result="user"} (\d+)', self.metrics())[0]) - 1))

    def test_spam_does_not_count_toward_discovery(self):
        self.send("erin@acme.example", message("erin@acme.example", "spam", GTUBE))
        self.assertNotIn("erin@acme.example", self.discovered())

    def test_catch_all_destination_is_relayed_but_not_counted(self):
        rcpt, code, text = self.send("anyone@catchall.example")
        self.assertEqual((rcpt, code), (250, 250), text)
        self.assertEqual(len(self.spooled("catchall")), 1)
        self.assertNotIn("anyone@catchall.example", self.discovered())
        self.assertIn("catch-all", open(self.log_path).read())
        # The operator is told which domains, and why: the CLI, and the API by tenant.
        out = subprocess.run([BINARY, "--config", self.config, "verify", "catch-all", "--json"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        found = json.loads(out.stdout)
        self.assertEqual([(d["domain"], d["company"]) for d in found], [("catchall.example", "acme")])
        self.assertIn("catchall.example", subprocess.run(
            [BINARY, "--config", self.config, "verify", "catch-all"], capture_output=True, text=True).stdout)
        self.assertEqual(self.api_as(None, "/api/v1/verify/catch-all")[0], 401)
        for email, company, seen in [("admin@acme.example", "acme", ["catchall.example"]),
                                     ("admin@quiet.example", "quiet", [])]:
            self.add_login(email, "--company", company)
            status, body = self.api_as(email, "/api/v1/verify/catch-all")
            self.assertEqual(status, 200)
            self.assertEqual([d["domain"] for d in body["items"]], seen)
        self.add_login("alice@acme.example", "--role", "end_user")
        self.assertEqual(self.api_as("alice@acme.example", "/api/v1/verify/catch-all")[0], 403)

    def test_a_domain_moved_to_another_server_is_asked_again(self):
        """The callout cache keeps an answer days long; when the domain's mail moves to another
        server, the old server's answers are not used for it."""
        def rcpt(to):  # RCPT only: nothing is delivered or counted
            with self.smtp() as s:
                s.mail("bob@example.org")
                return s.rcpt(to)[0]
        self.cli("domain", "add", "moving.example", "--company", "acme", "--destination",
                 "127.0.0.1:%d" % self.mtas["catchall"][0])
        catch_all = lambda: [d["domain"] for d in json.loads(subprocess.run(
            [BINARY, "--config", self.config, "verify", "catch-all", "--json"],
            capture_output=True, text=True, check=True).stdout)]
        self.assertEqual(rcpt("zed@moving.example"), 250)  # the old server takes any address
        self.assertIn("moving.example", catch_all())
        self.cli("domain", "update", "moving.example", "--destination",
                 "127.0.0.1:%d" % self.mtas["main"][0])
        self.assertNotIn("moving.example", catch_all())  # found at the old server: not listed
        self.assertEqual(rcpt("zed@moving.example"), 550)  # the new one knows no zed
        self.assertEqual(rcpt("alice@moving.example"), 250)
        self.assertNotIn("moving.example", catch_all())  # and the new server is no catch-all

    def api_as(self, email, path, method="GET", csrf=True):
        """method path with a session of email's login (None: no session), its CSRF token sent
        unless csrf is False; (status, JSON body)."""
        base = "http://127.0.0.1:%d" % self.admin_port
        headers = {}
        if email:
            login = urllib.request.Request(base + "/api/v1/login", method="POST",
                                           data=json.dumps({"email": email, "password": "correct horse battery"}).encode(),
                                           headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(login) as r:
                headers["Cookie"] = r.headers["Set-Cookie"].split(";")[0]
                if csrf:
                    headers["X-CSRF-Token"] = json.loads(r.read())["csrf_token"]
        request = urllib.request.Request(base + path, method=method, headers=headers,
                                         data=b"{}" if method != "GET" else None)
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def add_login(self, email, *how):
        subprocess.run([BINARY, "--db", self.db, "login", "add", email] + list(how),
                       input="correct horse battery\n", text=True, check=True, capture_output=True)

    def test_domain_check_over_the_api_for_the_company_administrators(self):
        self.add_login("checker@acme.example", "--company", "acme")
        self.add_login("checker@quiet.example", "--company", "quiet")
        self.cli("user", "add", "dora@acme.example")
        self.add_login("dora@acme.example", "--role", "end_user")
        check = lambda email, company, domain, **kw: self.api_as(
            email, "/api/v1/companies/%s/domains/%s/check" % (company, domain), "POST", **kw)
        self.assertEqual(check(None, "acme", "tls.example")[0], 401)
        status, found = check("checker@acme.example", "acme", "tls.example")
        self.assertEqual(status, 200, found)
        # The CLI's JSON: the same session, TLS under the relay's policy, a random recipient.
        self.assertEqual((found["domain"], found["destination"]),
                         ("tls.example", "127.0.0.1:%d" % self.mtas["tls"][0]))
        self.assertTrue(found["connected"])
        self.assertTrue(found["tls"]["active"])
        self.assertIn("CN=127.0.0.1", found["tls"]["certificate"])
        self.assertTrue(found["verifies_recipients"])
        self.assertEqual(found["verdict"], "recipients are verified by callout")
        self.assertTrue(found["random_recipient"].startswith("550"), found["random_recipient"])
        status, found = check("checker@acme.example", "acme", "CATCHALL.example")
        self.assertEqual(status, 200, found)
        self.assertTrue(found["accepts_any_address"])
        self.assertIn("catch-all", found["verdict"])
        # A server that is down is found so: the check ran.
        status, found = check("checker@acme.example", "acme", "dead.example")
        self.assertEqual(status, 200, found)
        self.assertFalse(found["connected"])
        self.assertEqual((found["mail_from"], found["random_recipient"], found["verdict"]), (None, None, ""))
        # A session without its CSRF token changes nothing and asks nothing.
        self.assertEqual(check("checker@acme.example", "acme", "tls.example", csrf=False)[0], 403)
        # Tenants: another company's administrator finds neither the company nor its domains;
        # a domain of another company is not under this one; to an end user the company's
        # routes are as absent as to a stranger.
        self.assertEqual(check("checker@quiet.example", "acme", "tls.example")[0], 404)
        self.assertEqual(check("checker@quiet.example", "quiet", "tls.example")[0], 404)
        self.assertEqual(check("checker@quiet.example", "quiet", "nonexistent.example")[0], 404)
        self.assertEqual(check("checker@quiet.example", "quiet", "quiet.example")[0], 200)
        self.assertEqual(check("dora@acme.example", "acme", "tls.example")[0], 404)
        paths = self.api_as(None, "/api/v1/openapi.json")[1]["paths"]
        self.assertIn("post", paths["/api/v1/companies/{company}/domains/{domain}/check"])

    def test_second_callout_for_an_address_is_answered_from_the_cache(self):
        self.send("frank@acme.example")
        before = self.metrics()
        self.send("frank@acme.example")
        after = self.metrics()
        cached = lambda t: int(re.search(r'result="callout_accept_cached"} (\d+)', t).group(1)) \
            if 'callout_accept_cached' in t else 0
        self.assertEqual(cached(after), cached(before) + 1)

    def test_verify_flush_clears_the_running_cache(self):
        self.send("grace@acme.example")
        out = subprocess.run([BINARY, "--config", self.config, "verify", "flush", "grace@acme.example"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, "removed 1 cached result(s)\n")
        out = subprocess.run([BINARY, "--config", self.config, "verify", "flush", "--domain", "acme.example",
                              "--json"], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("removed", json.loads(out.stdout))

    def test_verify_explain_tells_what_the_running_cache_holds(self):
        """For an unknown address (a callout), `verify explain` asks the running serve for its
        remembered answer: nothing before mail to it, the destination's 250 after, nothing once
        flushed."""
        def explain(*extra):
            out = subprocess.run([BINARY, "--config", self.config, "verify", "explain",
                                  "nora@acme.example", *extra], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            return out.stdout
        self.assertEqual(json.loads(explain("--json"))["answer"], "callout")
        self.assertIn("  cached:      nothing: the next mail to it is a callout\n", explain())
        self.send("nora@acme.example")
        cached = json.loads(explain("--json"))["cached"]
        self.assertEqual(cached["verdict"], "accept", cached)
        self.assertTrue(cached["reply"].startswith("250"), cached)
        self.assertLess(cached["refresh_at"], cached["expires_at"])
        self.assertFalse(cached["accept_all"])
        self.assertRegex(explain(), r"  cached:      accept \(250[^)]*\), asked again after \S+Z, "
                                    r"forgotten at \S+Z\n")
        subprocess.run([BINARY, "--config", self.config, "verify", "flush", "nora@acme.example"],
                       check=True, capture_output=True)
        self.assertIsNone(json.loads(explain("--json"))["cached"])

    def test_recipients_of_two_destinations_are_split(self):
        with self.smtp() as s:
            s.mail("split@example.org")
            self.assertEqual(s.rcpt("alice@acme.example")[0], 250)
            code, text = s.rcpt("x@catchall.example")
            self.assertEqual(code, 452)
            self.assertIn(b"4.5.3", text)
        entries = self.mail_log("acme", "--address", "split@example.org", want=1)
        self.assertEqual([(e["stage"], e["result"], e["code"], e["recipient"]) for e in entries],
                         [("rcpt", "deferred", 452, "x@catchall.example")], entries)

    # ---- outbound -------------------------------------------------------------------------

    def send_outbound(self, sender, to="someone@elsewhere.example", source="127.0.0.1"):
        with smtplib.SMTP(timeout=20, source_address=(source, 0)) as s:
            s.connect("127.0.0.1", self.outbound_port)
            s.ehlo("mail.acme.example")
            code, text = s.mail(sender)
            if code != 250:
                return code, text.decode()
            self.assertEqual(s.rcpt(to)[0], 250)
            code, text = s.data(message(to, "outbound"))
            return code, text.decode()

    def test_outbound_101st_recipient_gets_452_in_the_companys_log(self):
        with smtplib.SMTP("127.0.0.1", self.outbound_port, timeout=20) as s:
            s.ehlo("mail.acme.example")
            self.assertEqual(s.mail("alice@acme.example")[0], 250)
            for i in range(100):
                self.assertEqual(s.rcpt("many%d@elsewhere.example" % i)[0], 250, i)
            self.assertEqual(s.rcpt("many100@elsewhere.example")[0], 452)
        entries = self.mail_log("acme", "--address", "many100@elsewhere.example", want=1)
        self.assertEqual([(e["direction"], e["stage"], e["result"], e["code"]) for e in entries],
                         [("outbound", "rcpt", "deferred", 452)], entries)

    def test_outbound_from_an_unknown_sender_is_relayed_and_discovered(self):
        before = self.spooled()
        code, text = self.send_outbound("new.sender@acme.example")
        self.assertEqual(code, 250, text)
        new = [f for f in self.spooled() if f not in before]
        self.assertEqual(len(new), 1)
        env = json.load(open(os.path.join(self.mtas["main"][1], new[0].replace(".eml", ".json"))))
        self.assertEqual(env["to"], ["someone@elsewhere.example"])
        d = self.discovered()["new.sender@acme.example"]
        self.assertEqual(d["outbound_messages"], 1)
        self.assertIsNotNone(d["discovered_at"])

    def test_outbound_with_auto_add_creates_the_user_at_once(self):
        self.assertEqual(self.send_outbound("sales@out.example")[0], 250)
        sales = json.loads(self.cli("user", "show", "sales@out.example", "--json"))
        self.assertEqual((sales["role"], sales["source"]), ("silent_user", "discovery"))

    def test_users_last_mail_is_their_last_clean_message_in_or_out(self):
        self.cli("user", "add", "nina@acme.example")
        self.cli("alias", "add", "ned@acme.example", "--user", "nina@acme.example")
        self.cli("user", "add", "mona@acme.example")
        self.cli("user", "add", "writer@out.example")
        last = lambda a: json.loads(self.cli("user", "show", a, "--json"))["last_mail_at"]
        # Spam is refused, not delivered: no mail had.
        self.assertEqual(self.send("nina@acme.example", message("nina@acme.example", "x", GTUBE))[1] // 100, 5)
        # A clean message to an alias is the user's; one sent out is the sender's.
        self.assertEqual(self.send("ned@acme.example")[:2], (250, 250))
        self.assertEqual(self.send_outbound("writer@out.example")[0], 250)
        deadline = time.time() + 10  # written with the mail log, every second
        while time.time() < deadline and not (last("nina@acme.example") and last("writer@out.example")):
            time.sleep(0.2)
        for address in ("nina@acme.example", "writer@out.example"):
            at = datetime.datetime.fromisoformat(last(address).replace("Z", "+00:00"))
            age = datetime.datetime.now(datetime.timezone.utc) - at
            self.assertLess(abs(age.total_seconds()), 60, (address, at))
        self.assertIsNone(last("mona@acme.example"))
        table = self.cli("user", "list", "--company", "acme", "--search", "nina")
        self.assertRegex(table, r"nina@acme\.example .* %s +acme\n" % datetime.datetime.now(datetime.timezone.utc).date().isoformat())
        self.assertRegex(self.cli("user", "show", "mona@acme.example"), r"last mail: +none yet\n")
        # Created just now, no one is quiet for a day yet.
        quiet = json.loads(self.cli("user", "list", "--company", "acme", "--no-mail-days", "1", "--json"))
        self.assertNotIn("mona@acme.example", [u["address"] for u in quiet])

    def test_outbound_sender_outside_the_company_is_refused(self):
        code, text = self.send_outbound("someone@gmail.example")
        self.assertEqual(code, 550)
        self.assertIn("5.7.1", text)

    def test_outbound_from_outside_the_relay_networks_is_refused(self):
        code, text = self.send_outbound("alice@acme.example", source="127.0.0.2")
        self.assertEqual(code, 550)
        self.assertIn("5.7.1 relay access denied", text)
        # In the operators' view of the mail log (no company's), for a new server to be let in.
        [entry] = self.mail_log(None, "--address", "alice@acme.example", "--direction", "outbound",
                                "--result", "rejected", want=1)
        self.assertEqual((entry["company"], entry["stage"], entry["client_ip"], entry["recipient"]),
                         ("", "mail", "127.0.0.2", ""))
        self.assertIn("127.0.0.2 is not an outbound relay network of any company", entry["reply"])
        self.assertEqual(self.mail_log("acme", "--address", "alice@acme.example", "--direction",
                                       "outbound", "--result", "rejected"), [])

    # ---- the mail log ---------------------------------------------------------------------

    def mail_log(self, company, *args, want=0):
        """The company's mail log (`mail-log --json`; company None: every company's) once it
        holds `want` entries: serve writes them every second, off the SMTP path."""
        which = ("--company", company) if company else ()
        for _ in range(100):
            entries = json.loads(self.cli("mail-log", *which, "--json", *args))
            if len(entries) >= want:
                return entries
            time.sleep(0.1)
        self.fail("mail log of %s %s: %d entries, not %d" % (company, args, len(entries), want))

    def test_a_long_write_holds_up_discovery_counts_and_not_the_mail_log(self):
        # An import or a directory sync holds the store's write for as long as it runs (here
        # psql holds the lock every PostgreSQL write transaction of mailroster takes). The
        # discovery count waits for it; the mail log, written on a connection and a queue of
        # its own with an INSERT that takes no such lock, does not.
        if not databases.POSTGRES:
            self.skipTest("SQLite has one writer: its mail log waits for the write as well")
        lock = "pg_advisory_xact_lock(7244918, hashtext(current_schema()))"
        holder = subprocess.Popen(["psql", "-q", self.db, "-c", "BEGIN; SELECT %s; SELECT "
                                   "pg_sleep(8); COMMIT;" % lock], stdout=subprocess.DEVNULL)
        try:
            for _ in range(100):
                held = subprocess.run(["psql", "-tAq", self.db, "-c", "SELECT count(*) FROM pg_locks "
                                       "WHERE locktype = 'advisory' AND classid = 7244918 AND granted"],
                                      capture_output=True, text=True, check=True).stdout.strip()
                if held != "0":
                    break
                time.sleep(0.05)
            self.assertEqual(self.send("pat@acme.example", sender="longwrite@example.org")[:2], (250, 250))
            entries = self.mail_log("acme", "--address", "longwrite@example.org", want=1)
            self.assertEqual(entries[0]["recipient"], "pat@acme.example")
            self.assertIsNone(holder.poll(), "the write ended before the mail log was read")
            waiting = json.loads(self.cli("discovery", "list", "--company", "acme", "--json"))
            self.assertNotIn("pat@acme.example", [d["address"] for d in waiting])
        finally:
            holder.wait()
        self.assertEqual(len(self.discovered()["pat@acme.example"]["clean_inbound"]), 1)

    def test_the_mail_log_says_what_happened_to_each_recipient(self):
        sender = "mailtrace@example.org"
        self.assertEqual(self.send("alice@acme.example", sender=sender)[:2], (250, 250))
        self.assertEqual(self.send("nobody@acme.example", sender=sender)[0], 550)
        spam = message("alice@acme.example", "spam", GTUBE + "\r\n")
        self.assertEqual(self.send("alice@acme.example", spam, sender=sender)[:2], (250, 550))
        self.assertEqual(self.send("someone@dead.example", sender=sender)[0], 451)
        self.assertEqual(self.send("someone@not-a-customer.example", sender=sender)[0], 550)
        big = message("alice@acme.example", "big", ("x" * 998 + "\r\n") * 250)
        self.assertEqual(self.send("alice@acme.example", big, sender=sender)[:2], (250, 552))
        self.assertEqual(self.send_outbound("mailtrace@acme.example")[0], 250)

        entries = self.mail_log("acme", "--address", "MAILTRACE", want=6)
        self.assertEqual(len(entries), 6, entries)  # the unregistered domain is not acme's
        outbound, oversize, deferred, spammed, rejected, delivered = entries  # newest first
        # Refused by the SMTP server itself, before the gateway saw the message.
        self.assertEqual((oversize["stage"], oversize["result"], oversize["code"], oversize["recipient"]),
                         ("data", "rejected", 552, "alice@acme.example"))
        main = "127.0.0.1:%d" % self.mtas["main"][0]
        self.assertEqual((delivered["direction"], delivered["stage"], delivered["result"],
                          delivered["code"], delivered["recipient"], delivered["server"]),
                         ("inbound", "data", "delivered", 250, "alice@acme.example", main))
        self.assertIn("queued as FAKE", delivered["reply"])  # the destination's own answer
        self.assertEqual(delivered["sender"], sender)
        self.assertEqual(delivered["client_ip"], "127.0.0.1")
        self.assertGreater(delivered["size"], 0)
        self.assertRegex(delivered["queue_id"], r"\S+\.1$")
        self.assertEqual((rejected["stage"], rejected["result"], rejected["code"], rejected["recipient"]),
                         ("rcpt", "rejected", 550, "nobody@acme.example"))
        self.assertIn("user unknown", rejected["reply"])
        self.assertEqual((spammed["stage"], spammed["result"], spammed["code"]), ("data", "spam", 550))
        self.assertIn("GTUBE", spammed["reply"])
        self.assertEqual((deferred["stage"], deferred["result"], deferred["code"], deferred["recipient"]),
                         ("rcpt", "deferred", 451, "someone@dead.example"))
        self.assertEqual((outbound["direction"], outbound["result"], outbound["sender"],
                          outbound["recipient"], outbound["server"]),
                         ("outbound", "delivered", "mailtrace@acme.example", "someone@elsewhere.example",
                          main))  # the next hop's second server: the first is down

        # The unregistered domain's refusal is no company's: in the operators' view only.
        unrouted = self.mail_log(None, "--address", "@not-a-customer.example", want=1)
        self.assertEqual([(e["company"], e["company_id"], e["result"], e["code"], e["sender"])
                          for e in unrouted], [("", 0, "rejected", 550, sender)])
        self.assertIn("relay access denied", unrouted[0]["reply"])
        self.assertEqual(unrouted[0]["recipient"], "someone@not-a-customer.example")
        table = self.cli("mail-log", "--address", "@not-a-customer.example")
        self.assertRegex(table, r"\s-\s+inbound\s+mailtrace@example.org\s+someone@not-a-customer.example")

        # Found by result and direction; another company sees none of it.
        # A message found by its id: the gateway's (as the 250 said it), or the destination's.
        by_id = self.mail_log("acme", "--id", delivered["queue_id"])
        self.assertIn(delivered["id"], [e["id"] for e in by_id])
        fake_id = re.search(r"queued as (FAKE\d+)", delivered["reply"]).group(1)
        self.assertIn(delivered["id"], [e["id"] for e in self.mail_log("acme", "--id", fake_id.lower())])
        spam_only = self.mail_log("acme", "--address", "mailtrace", "--result", "spam")
        self.assertEqual([e["id"] for e in spam_only], [spammed["id"]])
        out_only = self.mail_log("acme", "--address", "mailtrace", "--direction", "outbound")
        self.assertEqual([e["id"] for e in out_only], [outbound["id"]])
        self.assertEqual(self.mail_log("quiet", "--address", "mailtrace"), [])
        table = self.cli("mail-log", "--company", "acme", "--address", "nobody@acme.example")
        self.assertRegex(table, r"inbound\s+mailtrace@example.org\s+nobody@acme.example\s+rejected\s+550 5\.1\.1")
        with self.assertRaises(RuntimeError) as bad:
            self.cli("mail-log", "--company", "acme", "--since", "last week")
        self.assertIn("neither an ISO-8601 time nor a duration", str(bad.exception))
        written = re.search(r"^mailroster_mail_log_written_total (\S+)$", self.metrics(), re.M)
        self.assertGreaterEqual(float(written.group(1)), 6)

    def test_inbound_port_is_not_an_outbound_relay(self):
        rcpt, _, text = self.send("someone@elsewhere.example", sender="alice@acme.example")
        self.assertEqual(rcpt, 550)
        self.assertIn("relay access denied", text)

    # ---- protocol limits ------------------------------------------------------------------

    def test_a_client_spraying_refused_recipients_is_dropped_at_the_error_limit(self):
        # Relay denials are no harvest (no company's addresses), but each is an error of the
        # session, as in Postfix (smtpd_hard_error_limit): at the 20th the session ends.
        rcpts = b"".join(b"RCPT TO:<u%d@foreign%d.example>\r\n" % (i, i) for i in range(25))
        out = self.raw([b"EHLO prober.example\r\nMAIL FROM:<x@example.org>\r\n" + rcpts + b"NOOP\r\nQUIT\r\n"])
        replies = [line for line in out.splitlines() if line[:3] in ("550", "421", "250", "221")]
        self.assertEqual(sum(1 for line in replies if line.startswith("550 5.7.1")), 20, out)
        self.assertTrue(replies[-1].startswith("421 4.7.0"), out)
        self.assertIn("too many errors", replies[-1])
        self.assertNotIn("221", out)  # closed at the limit: the NOOP and QUIT were not run

    def test_declared_oversize_is_refused_at_mail(self):
        with self.smtp() as s:
            code, text = s.mail("bob@example.org", ["SIZE=300000"])
            self.assertEqual(code, 552)
            self.assertIn(b"5.3.4", text)
            # More than 64 bits hold is a size too, and too large; letters are no size.
            self.assertEqual(s.mail("bob@example.org", ["SIZE=" + "9" * 30])[0], 552)
            self.assertEqual(s.mail("bob@example.org", ["SIZE=12k"])[0], 501)

    def test_oversize_data_is_refused_and_not_delivered(self):
        before = self.spooled()
        big = message("alice@acme.example", "big", ("x" * 998 + "\r\n") * 250)
        rcpt, code, text = self.send("alice@acme.example", big)
        self.assertEqual((rcpt, code), (250, 552), text)
        self.assertEqual(self.spooled(), before)

    def test_101st_recipient_gets_452(self):
        with self.smtp() as s:
            s.mail("toomany@example.org")
            for i in range(100):
                self.assertEqual(s.rcpt("alice@acme.example")[0], 250, i)
            code, text = s.rcpt("alice@acme.example")
            self.assertEqual(code, 452)
            self.assertIn(b"4.5.3", text)
        # Deferred, in the company's mail log: the administrator sees why it came later.
        entries = self.mail_log("acme", "--address", "toomany@example.org", want=1)
        self.assertEqual([(e["stage"], e["result"], e["code"], e["recipient"]) for e in entries],
                         [("rcpt", "deferred", 452, "alice@acme.example")], entries)

    def test_over_long_command_line_gets_500(self):
        out = self.raw([b"EHLO x\r\n", b"NOOP " + b"a" * 600 + b"\r\n", b"QUIT\r\n"], read_until=b"221")
        self.assertIn("500 5.5.2 line too long", out)
        self.assertIn("221 2.0.0", out)

    def test_over_long_text_line_rejects_the_message(self):
        rcpt, code, text = self.send("alice@acme.example", message("alice@acme.example", "wide", "y" * 1200 + "\r\n"))
        self.assertEqual((rcpt, code), (250, 550), text)
        self.assertIn("5.6.0", text)

    def test_bare_lf_in_data_is_refused_not_smuggled(self):
        before = self.spooled()
        smuggle = (b"EHLO x\r\nMAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@acme.example>\r\nDATA\r\n")
        body = (b"From: a@example.org\r\nDate: x\r\nMessage-ID: <1@x>\r\n\r\nhi\r\n.\n"
                b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<alice@acme.example>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n")
        out = self.raw([smuggle, body], read_until=b"221")
        self.assertIn("550 5.6.11", out)
        self.assertEqual(self.spooled(), before)

    def test_pipelined_session(self):
        before = self.spooled()
        msg = message("alice@acme.example", "pipelined").encode()
        out = self.raw([b"EHLO pipeline.example\r\n",
                        b"MAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@acme.example>\r\n"
                        b"RCPT TO:<nobody@acme.example>\r\nRCPT TO:<judy@acme.example>\r\nDATA\r\n",
                        msg + b".\r\nQUIT\r\n"], read_until=b"221")
        self.assertIn("250-PIPELINING", out)
        codes = re.findall(r"^(\d{3})[ -]", out, re.M)
        # greeting, EHLO (multi-line), MAIL, RCPT ok, RCPT 550, RCPT ok, 354, 250, 221
        self.assertEqual([c for c in codes if c != "250"] , ["220", "550", "354", "221"])
        self.assertIn("Ok: delivered", out)
        new = [f for f in self.spooled() if f not in before]
        self.assertEqual(len(new), 1)

    def test_bdat_chunks_are_relayed_as_sent(self):
        """CHUNKING (RFC 3030): a message in BDAT chunks, pipelined, with boundaries anywhere,
        is relayed byte for byte (the next hop gets it by DATA, dot-stuffed)."""
        before = self.spooled()
        body = message("alice@acme.example", "chunked", ".a line with a dot\r\nend\r\n").encode()
        parts = [body[:10], body[10:11], body[11:]]
        wire = b"".join(b"BDAT %d%s\r\n" % (len(p), b" LAST" if i == len(parts) - 1 else b"") + p
                        for i, p in enumerate(parts))
        out = self.raw([b"EHLO chunks.example\r\n",
                        b"MAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@acme.example>\r\n" + wire +
                        b"QUIT\r\n"], read_until=b"221")
        self.assertIn("250-CHUNKING", out)
        self.assertEqual(re.findall(r"^250 2\.0\.0 (\d+) octets received", out, re.M), ["10", "1"])
        self.assertIn("Ok: delivered", out)
        new = [f for f in self.spooled() if f not in before]
        self.assertEqual(len(new), 1)
        relayed = self.read_spool("main", new[0])
        self.assertTrue(relayed.startswith(b"Received: "), relayed[:100])
        self.assertTrue(relayed.endswith(body), relayed[-200:])

    def test_a_refused_bdat_chunk_is_read_and_dropped_never_run(self):
        """A BDAT out of place is refused after its chunk is read: the chunk's bytes (here a
        QUIT) are never taken for commands. DATA or RCPT after BDAT is refused; RSET clears."""
        before = self.spooled()
        trap = b"QUIT\r\n"
        out = self.raw([b"EHLO chunks.example\r\nBDAT 6\r\n" + trap + b"NOOP\r\n"
                        b"MAIL FROM:<bob@example.org>\r\nBDAT 6 LAST\r\n" + trap + b"NOOP\r\n"
                        b"RCPT TO:<alice@acme.example>\r\nBDAT 4\r\nab\r\nDATA\r\n"
                        b"RCPT TO:<judy@acme.example>\r\nRSET\r\nQUIT\r\n"], read_until=b"221")
        codes = [c for c in re.findall(r"^(\d{3}) ", out, re.M) if c != "250"]
        self.assertEqual(codes, ["220", "503", "554", "503", "503", "221"], out)
        self.assertIn("503 5.5.1 DATA after BDAT", out)
        self.assertEqual(self.spooled(), before)
        # A chunk over the size limit, or with a bare LF, refuses the message at LAST.
        big = b"x" * 998 + b"\r\n"
        for chunks, want in [([big * 150, big * 60], "552 5.3.4"), ([b"a\nb\r\n"], "550 5.6.11")]:
            wire = b"".join(b"BDAT %d%s\r\n" % (len(c), b" LAST" if i == len(chunks) - 1 else b"") + c
                            for i, c in enumerate(chunks))
            out = self.raw([b"EHLO chunks.example\r\nMAIL FROM:<bob@example.org>\r\n"
                            b"RCPT TO:<alice@acme.example>\r\n" + wire + b"QUIT\r\n"], read_until=b"221")
            self.assertIn(want, out)
        self.assertEqual(self.spooled(), before)
        # A BDAT whose size cannot be read ends the session: its chunk cannot be skipped.
        out = self.raw([b"EHLO chunks.example\r\nBDAT many\r\nNOOP\r\n"], read_until=b"421")
        self.assertIn("501 5.5.4 Syntax: BDAT <size> [LAST]", out)
        self.assertIn("421 4.5.0", out)
        self.assertNotIn("2.0.0 Ok", out.split("501")[1])  # the NOOP was not run

    def test_commands_out_of_order(self):
        out = self.raw([b"MAIL FROM:<a@example.org>\r\n", b"EHLO x\r\n", b"RCPT TO:<alice@acme.example>\r\n",
                        b"DATA\r\n", b"FOO\r\n", b"VRFY alice\r\n", b"QUIT\r\n"], read_until=b"221")
        self.assertIn("503 5.5.1 send EHLO or HELO first", out)
        self.assertIn("503 5.5.1 need MAIL first", out)
        self.assertIn("503 5.5.1 need RCPT first", out)
        self.assertIn("500 5.5.2 command unrecognized", out)
        self.assertIn("252 2.5.2", out)

    def test_starttls_session_with_smtplib(self):
        before = self.spooled()
        with smtplib.SMTP("127.0.0.1", self.port, timeout=20) as s:
            s.ehlo("tls.example")
            self.assertTrue(s.has_extn("starttls"))
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s.starttls(context=ctx)
            s.ehlo("tls.example")
            self.assertFalse(s.has_extn("starttls"))
            cipher, version, bits = s.sock.cipher()
            s.sendmail("bob@example.org", ["alice@acme.example"], message("alice@acme.example", "over tls"))
        new = [f for f in self.spooled() if f not in before]
        self.assertEqual(len(new), 1)
        body = self.read_spool("main", new[0])
        self.assertIn(b"with ESMTPS", body)
        # What the client's hop was, as Postfix writes it.
        self.assertIn(("Received: from tls.example ([127.0.0.1])\r\n\t(using %s with cipher %s (%d/%d bits))\r\n"
                       "\tby mx.mailroster.test (mailroster) with ESMTPS id "
                       % (version, cipher, bits, bits)).encode(), body)

    def test_commands_sent_in_the_clear_behind_starttls_are_not_run(self):
        # CVE-2011-0411 (RFC 3207 4.2): what a man in the middle pipelines behind STARTTLS must
        # not be run inside the TLS session as if the client had sent it.
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.recv(4096)
        sock.sendall(b"EHLO x\r\n")
        self.assertIn(b"STARTTLS", sock.recv(4096))
        sock.sendall(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
        answer = recv_until(sock, b"\r\n")
        self.assertTrue(answer.startswith(b"220 "), answer)
        self.assertEqual(answer.count(b"\r\n"), 1, answer)  # nothing for the injected MAIL
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        tls = ctx.wrap_socket(sock)
        tls.sendall(b"EHLO x\r\nRCPT TO:<alice@acme.example>\r\nQUIT\r\n")
        out = recv_until(tls, b"221 ")
        tls.close()
        # Three answers, to the three commands sent over TLS; had the injected MAIL been run,
        # there would be a fourth before them.
        finals = [line for line in out.decode().split("\r\n") if re.match(r"\d{3} ", line)]
        self.assertEqual(len(finals), 3, out)
        self.assertTrue(finals[0].startswith("250 "), out)
        self.assertEqual(finals[1], "503 5.5.1 need MAIL first")

    def test_a_tls_client_that_stays_after_quit_holds_up_no_one(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        lingering = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
        lingering.ehlo("linger.example")
        lingering.starttls(context=ctx)
        lingering.ehlo("linger.example")
        lingering.sock.sendall(b"QUIT\r\n")
        self.assertTrue(lingering.sock.recv(512).startswith(b"221 "))
        # It neither closes nor answers the server's close_notify; the next client is served.
        try:
            started = time.time()
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as other:
                self.assertTrue(other.recv(512).startswith(b"220 "))
            self.assertLess(time.time() - started, 2)
        finally:
            lingering.close()

    def test_swaks_plain_and_starttls(self):
        if not shutil.which("swaks"):
            self.fail("swaks is not installed (scripts/install-deps.sh installs it)")
        for extra in [[], ["--tls"]]:
            r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.port, "--to", "alice@acme.example",
                                "--from", "bob@example.org", "--helo", "swaks.example"] + extra,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("250 2.0.0 Ok: delivered", r.stdout)
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.port, "--to", "ghost@acme.example",
                            "--from", "bob@example.org"], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("550 5.1.1", r.stdout)

    def test_metrics_and_one_log_line_per_message(self):
        self.send("alice@acme.example")
        text = self.metrics()
        self.assertIn('mailroster_inbound_messages_total{result="delivered"}', text)
        self.assertIn('mailroster_inbound_rcpt_total{result="relay_denied"}', text) if \
            'relay_denied' in text else None
        self.assertIn("mailroster_inbound_sessions", text)
        log = open(self.log_path).read()
        self.assertRegex(log, r"inbound id=\w+\.\d+ client=127\.0\.0\.1 from=<bob@example\.org> "
                              r"to=<alice@acme\.example> size=\d+ result=delivered reply=\"250 .*\" ms=\d+")


class RequiredTls(unittest.TestCase):
    """[outbound] require_tls: the companies' servers must use STARTTLS before MAIL; the
    inbound listener, which the world sends to, still takes mail in the clear."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mailroster-requiretls-")
        cls.spool = os.path.join(cls.dir, "spool")
        cls.mta = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_mta.py"), "--spool", cls.spool,
                                    "--accept", "sam,friend"], stdout=subprocess.PIPE, text=True)
        mta_port = int(cls.mta.stdout.readline().split()[-1])
        db = new_database(cls.dir)
        for args in (["company", "add", "outco", "--relay-network", "127.0.0.1/32"],
                     ["domain", "add", "out.example", "--company", "outco", "--destination",
                      "127.0.0.1:%d" % mta_port],
                     ["user", "add", "sam@out.example"]):
            subprocess.run([BINARY, "--db", db] + args, check=True, capture_output=True)
        cert, key = self_signed(cls.dir, "mailroster.test", files=("cert.pem", "key.pem"))
        config = os.path.join(cls.dir, "mailroster.toml")
        with open(config, "w") as f:
            f.write('[database]\n%s\n[admin]\nlisten = "127.0.0.1:0"\n'
                    '[smtp]\ninbound_listen = "127.0.0.1:0"\ntls_cert = "%s"\ntls_key = "%s"\n'
                    '[outbound]\nlisten = "127.0.0.1:0"\nnext_hop = "127.0.0.1:%d"\nrequire_tls = true\n'
                    % (database_toml(db, cls.dir), cert, key, mta_port))
        cls.log_path = os.path.join(cls.dir, "serve.log")
        cls.serve, cls.log, ports = start_serve(config, cls.log_path)
        cls.port, cls.outbound_port = ports["inbound SMTP"], ports["outbound SMTP"]

    @classmethod
    def tearDownClass(cls):
        cls.serve.terminate()
        cls.serve.wait(10)
        cls.log.close()
        cls.mta.kill()
        cls.mta.wait()
        cls.mta.stdout.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def delivered(self):
        return [f for f in os.listdir(self.spool) if f.endswith(".eml")] if os.path.isdir(self.spool) else []

    def test_mail_waits_for_starttls_on_the_outbound_listener(self):
        before = len(self.delivered())
        with smtplib.SMTP("127.0.0.1", self.outbound_port, timeout=20) as s:
            s.ehlo("mail.out.example")
            self.assertTrue(s.has_extn("starttls"))
            code, text = s.mail("sam@out.example")
            self.assertEqual((code, text), (530, b"5.7.0 Must issue a STARTTLS command first"))
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s.starttls(context=ctx)
            s.ehlo("mail.out.example")
            s.sendmail("sam@out.example", ["friend@elsewhere.example"], message("friend@elsewhere.example"))
        self.assertEqual(len(self.delivered()), before + 1)
        with open(self.log_path) as f:
            self.assertIn("relaying to 127.0.0.1:", f.read())

    def test_swaks_with_and_without_tls(self):
        common = ["swaks", "--server", "127.0.0.1:%d" % self.outbound_port, "--from", "sam@out.example",
                  "--to", "friend@elsewhere.example", "--helo", "mail.out.example"]
        r = subprocess.run(common, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("<** 530 5.7.0 Must issue a STARTTLS command first", r.stdout)
        r = subprocess.run(common + ["--tls"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("250 2.0.0", r.stdout)

    def test_the_inbound_listener_takes_mail_in_the_clear(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=20) as s:
            s.ehlo("sender.example")
            self.assertEqual(s.mail("someone@example.org")[0], 250)
            self.assertEqual(s.rcpt("sam@out.example")[0], 250)
        with open(self.log_path) as f:
            log = f.read()
        self.assertRegex(log, r"inbound SMTP listening on \S+ as \S+ \(STARTTLS offered\)")
        self.assertRegex(log, r"outbound SMTP listening on \S+, relaying to \S+ \(STARTTLS required\)")


def quiet_gateway(directory, smtp, harvest):
    """A new database with one company, quiet, whose domain quiet.example has no server (every
    address there is unknown: discovery is off), and a config file for it in directory with
    these [smtp] and [harvest] lines, every listener on a port of its own: the file's path and
    the database (what --db takes)."""
    db = new_database(directory)
    run_cli(db, "company", "add", "quiet")
    run_cli(db, "domain", "add", "quiet.example", "--company", "quiet", "--destination",
            "127.0.0.1:9")
    config = os.path.join(directory, "mailroster.toml")
    with open(config, "w") as f:
        f.write('[database]\n%s\n[admin]\nlisten = "127.0.0.1:0"\n'
                '[smtp]\ninbound_listen = "127.0.0.1:0"\n%s[outbound]\nlisten = "127.0.0.1:0"\n'
                '[harvest]\n%s' % (database_toml(db, directory), smtp, harvest))
    return config, db


class Limits(unittest.TestCase):
    """Session limits need their own service with tight settings."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mailroster-limits-")
        config, _ = quiet_gateway(cls.dir, 'idle_timeout = "1s"\nmax_connections_per_client = 2\n',
                               'slow_after = 2\nrefuse_after = 4\ndelay = "1s"\nblock = "10m"\n')
        cls.log_path = os.path.join(cls.dir, "serve.log")
        cls.serve, cls.log, ports = start_serve(config, cls.log_path)
        cls.port = ports["inbound SMTP"]

    @classmethod
    def tearDownClass(cls):
        cls.serve.terminate()
        cls.serve.wait(10)
        cls.log.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_idle_session_is_closed_with_421(self):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.assertTrue(sock.recv(4096).startswith(b"220 "))
        started = time.time()
        data = recv_until(sock)
        sock.close()
        self.assertIn(b"421 4.4.2", data)
        self.assertLess(time.time() - started, 5)

    def test_harvesting_client_is_slowed_then_refused(self):
        s = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
        s.ehlo("harvester.example")
        s.mail("x@example.org")
        timings = []
        for i in range(4):
            t = time.time()
            code, text = s.rcpt("guess%d@quiet.example" % i)
            timings.append(time.time() - t)
            self.assertEqual(code, 550, text)
            self.assertIn(b"5.1.1", text)
        self.assertLess(timings[0], 0.5)
        self.assertLess(timings[1], 0.5)
        self.assertGreaterEqual(timings[2], 0.9)  # slowed after 2 unknown recipients
        code, text = s.rcpt("guess4@quiet.example")
        self.assertEqual(code, 421)
        self.assertIn(b"4.7.0 too many unknown recipients", text)
        with self.assertRaises(smtplib.SMTPServerDisconnected):
            s.noop()
        # A new connection from the same address stays refused.
        s2 = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
        s2.ehlo("harvester.example")
        s2.mail("x@example.org")
        self.assertEqual(s2.rcpt("guess5@quiet.example")[0], 421)

    def test_connections_per_client_are_limited(self):
        socks = [socket.create_connection(("127.0.0.1", self.port), timeout=10) for _ in range(3)]
        greetings = [s.recv(4096) for s in socks]
        for s in socks:
            s.close()
        self.assertTrue(greetings[0].startswith(b"220 "))
        self.assertTrue(greetings[1].startswith(b"220 "))
        self.assertTrue(greetings[2].startswith(b"421 4.7.0"), greetings[2])


def metric(admin_port, name):
    """A sample's value from serve's /metrics (name with its labels), 0 when not there yet."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin_port, timeout=5).read()
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def ipv6_loopback():
    """Whether this machine can listen on ::1."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@unittest.skipUnless(ipv6_loopback(), "no IPv6 loopback on this machine")
class Ipv6(ServeTestCase):
    """Listeners on IPv6: clients are known by their IPv6 address (harvest guard, relay
    networks), and an IPv4 client of a dual-stack listener ([::]) by its IPv4 address, not as
    ::ffff:a.b.c.d."""

    def setUp(self):
        super().setUp()
        config, db = quiet_gateway(self.dir, "", "slow_after = 2\nrefuse_after = 2\n")
        with open(config) as f:
            text = f.read()
        with open(config, "w") as f:
            f.write(text.replace('[admin]\nlisten = "127.0.0.1:0"', '[admin]\nlisten = "[::1]:0"')
                    .replace('inbound_listen = "127.0.0.1:0"', 'inbound_listen = "[::1]:0"')
                    .replace('[outbound]\nlisten = "127.0.0.1:0"', '[outbound]\nlisten = "[::]:0"'))
        run_cli(db, "company", "update", "quiet", "--relay-network", "::1/128")
        self.log_path = os.path.join(self.dir, "serve.log")
        self.log = open(self.log_path, "w")
        self.serve = subprocess.Popen([BINARY, "--config", config, "serve"],
                                      stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 10
        pattern = (r"admin HTTP listening on \[::1\]:(\d+)\n.*inbound SMTP listening on \[::1\]:(\d+)"
                   r" as .*\n.*outbound SMTP listening on \[::\]:(\d+)")
        while not re.search(pattern, self.log_text()):
            self.assertLess(time.time(), deadline, self.log_text())
            time.sleep(0.05)
        self.admin, self.inbound, self.outbound = map(int, re.search(pattern, self.log_text()).groups())

    def test_clients_over_ipv6_and_ipv4_mapped(self):
        s = smtplib.SMTP("::1", self.inbound, timeout=10)
        s.ehlo("client.example")
        s.mail("x@example.org")
        self.assertEqual([s.rcpt("g%d@quiet.example" % i)[0] for i in range(2)], [550, 550])
        code, text = s.rcpt("g3@quiet.example")
        self.assertEqual(code, 421)
        # Counted by its /64, as every IPv6 client (proxy_protocol_test: a harvester moving
        # through the addresses of its /64).
        self.assertIn(b"too many unknown recipients from ::/64;", text)
        # The outbound listener: ::1 is the company's relay network; 127.0.0.1 (as
        # ::ffff:127.0.0.1 on the dual-stack socket) is not, and is named as IPv4.
        s = smtplib.SMTP("::1", self.outbound, timeout=10)
        s.ehlo("mx.quiet.example")
        self.assertEqual(s.mail("bob@quiet.example")[0], 250)
        s.quit()
        s = smtplib.SMTP("127.0.0.1", self.outbound, timeout=10)
        s.ehlo("mx.quiet.example")
        code, text = s.mail("bob@quiet.example")
        self.assertEqual(code, 550)
        self.assertIn(b"127.0.0.1 is not an outbound relay network", text)
        s.quit()
        with urllib.request.urlopen("http://[::1]:%d/healthz" % self.admin, timeout=5) as r:
            self.assertEqual(r.status, 200)


class ConfigReload(ServeTestCase):
    """SIGHUP rereads the configuration file: what can change while serving applies to new
    connections and to the next command of those under way; what is read at start only is
    named in the log; a file that does not parse changes nothing."""

    def setUp(self):
        super().setUp()
        self.config, _ = quiet_gateway(self.dir, "max_message_size = 1000000\n",
                                       "slow_after = 100\nrefuse_after = 100\n")
        with open(self.config) as f:
            self.text = f.read()
        self.log_path = os.path.join(self.dir, "serve.log")
        self.serve, self.log, self.ports = start_serve(self.config, self.log_path)

    def reload(self, text):
        """Writes the file, sends SIGHUP and waits for the outcome in the log: its new lines."""
        with open(self.config, "w") as f:
            f.write(text)
        before = len(self.log_text())
        self.serve.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while not re.search(r"configuration (not )?reloaded", self.log_text()[before:]):
            self.assertLess(time.time(), deadline, self.log_text())
            time.sleep(0.05)
        return self.log_text()[before:]  # "configuration (not) reloaded" is the last line

    def size_offered(self, session):
        session.ehlo("client.example")
        return int(session.esmtp_features["size"])

    def test_sighup_turns_the_mail_log_off_and_on(self):
        db = re.search(r'(?:path|url) = "([^"]+)"', self.text).group(1)

        def refused(name):
            with smtplib.SMTP("127.0.0.1", self.ports["inbound SMTP"], timeout=10) as s:
                s.ehlo("client.example")
                s.mail("x@example.org")
                self.assertEqual(s.rcpt(name + "@quiet.example")[0], 550)

        def logged(name):
            return json.loads(run_cli(db, "mail-log", "--company", "quiet", "--json", "--address",
                                      name + "@"))

        def wait_logged(name):
            for _ in range(100):  # written every second
                if logged(name):
                    return
                time.sleep(0.1)
            self.fail(name + " not in the mail log")

        refused("before")
        wait_logged("before")
        said = self.reload(self.text + '[mail_log]\nenabled = false\nretention = "30d"\n')
        self.assertIn("configuration reloaded: mail_log.enabled, mail_log.retention", said)
        refused("while.off")
        refused("after")  # the marker: once it is logged, "while.off" would have been too
        said = self.reload(self.text)
        self.assertIn("configuration reloaded: mail_log.enabled, mail_log.retention", said)
        refused("after")
        wait_logged("after")
        self.assertEqual(len(logged("after")), 1)  # the one sent while the log was off is not
        self.assertEqual(logged("while.off"), [])

    def test_sighup_applies_what_can_change_and_names_what_cannot(self):
        port = self.ports["inbound SMTP"]
        under_way = smtplib.SMTP("127.0.0.1", port, timeout=10)
        self.assertEqual(self.size_offered(under_way), 1000000)
        self.assertNotIn(" debug ", self.log_text())

        changed = (self.text.replace("max_message_size = 1000000", "max_message_size = 2000000")
                   .replace("refuse_after = 100", "refuse_after = 2")
                   .replace('[smtp]\n', '[smtp]\nhostname = "renamed.example"\n')
                   + '[log]\nlevel = "debug"\n')
        said = self.reload(changed)
        self.assertIn("configuration reloaded: smtp.max_message_size, harvest.refuse_after, "
                      "log.level", said)  # in the order of the README's list
        self.assertIn("changed in the configuration but read at start only (restart to apply): "
                      "smtp.hostname", said)
        # New sessions and the one under way see the new limit; the host name stays.
        self.assertEqual(self.size_offered(under_way), 2000000)
        fresh = smtplib.SMTP("127.0.0.1", port, timeout=10)
        self.assertEqual(self.size_offered(fresh), 2000000)
        self.assertNotIn(b"renamed.example", fresh.ehlo_resp)
        # The harvest guard's new threshold: the third unknown recipient is refused.
        fresh.mail("x@example.org")
        self.assertEqual([fresh.rcpt("g%d@quiet.example" % i)[0] for i in range(3)],
                         [550, 550, 421])
        self.assertRegex(self.log_text(), r" debug inbound \w+: connection from 127\.0\.0\.1, "
                                          r"greeted 220")  # the new log level

        # A file that does not parse changes nothing; the restart-only change is still named.
        said = self.reload(changed.replace("max_message_size = 2000000", "max_message_size = "))
        self.assertRegex(said, r"configuration not reloaded: .*mailroster\.toml:\d+: .*; the "
                               r"settings in use stay")
        self.assertEqual(self.size_offered(under_way), 2000000)
        said = self.reload(changed)
        self.assertIn("configuration reloaded: no change", said)
        self.assertIn("(restart to apply): smtp.hostname", said)
        self.assertEqual(metric(self.ports["admin HTTP"],
                                'mailroster_config_reloads_total{result="ok"}'), 2)
        self.assertEqual(metric(self.ports["admin HTTP"],
                                'mailroster_config_reloads_total{result="failed"}'), 1)
        self.assertIsNone(self.serve.poll())
        under_way.quit()

    def test_sighup_applies_a_new_smarthost_relay_and_scoring(self):
        """The outbound next hop, the reports' relay and every [scoring] setting apply at a
        reload: the next message goes to the new smarthost and is scored as newly set."""
        mtas = {}
        for name in ("first", "second"):
            spool = os.path.join(self.dir, "spool-" + name)
            p = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_mta.py"), "--spool", spool,
                                  "--catch-all"], stdout=subprocess.PIPE, text=True)
            self.addCleanup(p.wait)
            self.addCleanup(p.kill)
            mtas[name] = (int(p.stdout.readline().split()[-1]), spool)
        db = re.search(r'(?:path|url) = "([^"]+)"', self.text).group(1)
        run_cli(db, "company", "add", "outco", "--relay-network", "127.0.0.1/32")
        run_cli(db, "domain", "add", "out.example", "--company", "outco", "--destination", "127.0.0.1:9")

        def send(body_headers=True, notify=()):
            with smtplib.SMTP("127.0.0.1", self.ports["outbound SMTP"], timeout=10) as s:
                s.ehlo("mail.out.example")
                s.mail("sender@out.example")
                s.rcpt("someone@elsewhere.example", list(notify))
                msg = (message("someone@elsewhere.example") if body_headers else
                       "From: <sender@out.example>\r\nSubject: bare\r\n\r\nno date, no id\r\n")
                try:
                    return s.data(msg)[0]
                except smtplib.SMTPDataError as e:
                    return e.smtp_code

        def delivered(name):
            spool = mtas[name][1]
            return len([f for f in os.listdir(spool) if f.endswith(".eml")]) if os.path.isdir(spool) else 0

        text = self.text + '[outbound]\nnext_hop = "127.0.0.1:%d"\n' % mtas["first"][0]
        text = text.replace('[outbound]\nlisten = "127.0.0.1:0"\n', "")  # one [outbound] table
        text = text.replace('[outbound]\n', '[outbound]\nlisten = "127.0.0.1:0"\n')
        said = self.reload(text)
        self.assertIn("configuration reloaded: outbound.next_hop", said)
        self.assertEqual((send(), send(False)), (250, 250))  # a bare message scores 2 of 5
        self.assertEqual((delivered("first"), delivered("second")), (2, 0))

        text = (text.replace("127.0.0.1:%d" % mtas["first"][0], "127.0.0.1:%d" % mtas["second"][0])
                + '[scoring]\nspam_threshold = 1.5\n[reports]\nrelay = "127.0.0.1:%d"\n' % mtas["second"][0])
        said = self.reload(text)
        self.assertIn("configuration reloaded: outbound.next_hop, reports.relay, scoring.spam_threshold",
                      said)
        self.assertNotIn("restart to apply", said)
        self.assertIn("scoring: built-in checks, spam at 1.5", said)
        self.assertEqual(send(), 250)
        self.assertEqual(send(False), 550)  # MISSING_DATE, MISSING_MESSAGE_ID: 2 of 1.5
        self.assertEqual((delivered("first"), delivered("second")), (2, 1))
        # The second smarthost offers no DSN: the relayed notice goes through the new relay.
        self.assertEqual(send(notify=["NOTIFY=SUCCESS"]), 250)
        # The server counts the notice when it has it; serve logs it when the server's answer
        # is read: a moment later.
        deadline = time.time() + 10
        while delivered("second") < 3 or "relayed notice mailed to sender@out.example" not in self.log_text():
            self.assertLess(time.time(), deadline, self.log_text())
            time.sleep(0.05)


    def test_sighup_applies_the_postmaster(self):
        """RCPT TO:<postmaster> (no domain) goes where [smtp] postmaster says since the last
        reload: none at first (550 saying so), then a user, then none again."""
        db = re.search(r'(?:path|url) = "([^"]+)"', self.text).group(1)
        run_cli(db, "user", "add", "pm@quiet.example")

        def rcpt():
            with smtplib.SMTP("127.0.0.1", self.ports["inbound SMTP"], timeout=10) as s:
                s.ehlo("client.example")
                s.mail("bob@example.org")
                return s.rcpt("postmaster")

        code, text = rcpt()
        self.assertEqual(code, 550)
        self.assertIn(b"no postmaster mailbox", text)
        said = self.reload(self.text.replace("[smtp]\n", '[smtp]\npostmaster = "pm@quiet.example"\n'))
        self.assertIn("configuration reloaded: smtp.postmaster", said)
        self.assertEqual(rcpt()[0], 250)
        self.reload(self.text)
        self.assertEqual(rcpt()[0], 550)

    def test_sighup_applies_strict_envelopes(self):
        def mail(path):
            with smtplib.SMTP("127.0.0.1", self.ports["inbound SMTP"], timeout=10) as s:
                s.ehlo("client.example")
                return s.docmd("MAIL", "FROM:" + path)

        self.assertEqual(mail("bob@example.org")[0], 250)
        said = self.reload(self.text.replace("[smtp]\n", "[smtp]\nstrict_envelopes = true\n"))
        self.assertIn("configuration reloaded: smtp.strict_envelopes", said)
        code, text = mail("bob@example.org")
        self.assertEqual(code, 501)
        self.assertIn(b"Syntax: MAIL FROM:<address>", text)
        self.assertEqual(mail("<bob@example.org>")[0], 250)
        self.reload(self.text)
        self.assertEqual(mail("bob@example.org")[0], 250)

    def test_sighup_applies_the_relay_tls_policy_and_its_cas(self):
        """[relay] tls and tls_ca_file apply at a reload, to the next session (idle ones made
        under the old policy are dropped); CAs that cannot be loaded change nothing."""
        cert, key = self_signed(self.dir, "127.0.0.1", ip="127.0.0.1", files=("mta.pem", "mta.key"))
        spool = os.path.join(self.dir, "spool-tls")
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_mta.py"), "--spool", spool,
                              "--accept", "tina", "--starttls", cert + "," + key],
                             stdout=subprocess.PIPE, text=True)
        self.addCleanup(p.wait)
        self.addCleanup(p.kill)
        mta = int(p.stdout.readline().split()[-1])
        db = re.search(r'(?:path|url) = "([^"]+)"', self.text).group(1)
        run_cli(db, "company", "add", "tlsco")
        run_cli(db, "domain", "add", "tls.example", "--company", "tlsco", "--destination", "127.0.0.1:%d" % mta)
        run_cli(db, "user", "add", "tina@tls.example")

        def send():
            with smtplib.SMTP("127.0.0.1", self.ports["inbound SMTP"], timeout=10) as s:
                s.ehlo("client.example")
                s.mail("bob@example.org")
                self.assertEqual(s.rcpt("tina@tls.example")[0], 250)
                try:
                    return s.data(message("tina@tls.example"))
                except smtplib.SMTPDataError as e:
                    return e.smtp_code, e.smtp_error

        self.assertEqual(send()[0], 250)  # "may": TLS, the certificate not checked
        said = self.reload(self.text + '[relay]\ntls = "verify"\n')
        self.assertIn("configuration reloaded: relay.tls", said)
        code, text = send()  # the idle session of "may" is not reused
        self.assertEqual(code, 451, text)
        self.assertIn(b"certificate verify failed", text)
        said = self.reload(self.text + '[relay]\ntls = "verify"\ntls_ca_file = "%s"\n' % (cert + ".missing"))
        self.assertRegex(said, r"configuration not reloaded: cannot load the CAs .*mta\.pem\.missing")
        self.assertEqual(send()[0], 451)  # still "verify" with the system's CAs
        said = self.reload(self.text + '[relay]\ntls = "verify"\ntls_ca_file = "%s"\n' % cert)
        self.assertIn("configuration reloaded: relay.tls_ca_file", said)
        self.assertEqual(send()[0], 250)
        delivered = [f for f in os.listdir(spool) if f.endswith(".json")]
        self.assertEqual(len(delivered), 2)
        for f in delivered:
            with open(os.path.join(spool, f)) as envelope:
                self.assertTrue(json.load(envelope)["tls"])

    def test_sighup_reads_certificates_from_new_paths(self):
        """New certificate paths apply at a reload (the certificate is read from them); TLS is
        turned on or off only at a start, which the reload says."""
        first = self_signed(self.dir, "first.mailroster.test", files=("first.pem", "first.key"))
        second = self_signed(self.dir, "second.mailroster.test", files=("second.pem", "second.key"))
        with_tls = lambda cert, key: self.text.replace(
            "[smtp]\n", '[smtp]\ntls_cert = "%s"\ntls_key = "%s"\n' % (cert, key))
        self.serve.terminate()
        self.serve.wait(10)
        self.log.close()
        with open(self.config, "w") as f:
            f.write(with_tls(*first))
        self.serve, self.log, self.ports = start_serve(self.config, self.log_path)

        def subject():
            with smtplib.SMTP("127.0.0.1", self.ports["inbound SMTP"], timeout=10) as s:
                s.starttls()
                der = s.sock.getpeercert(binary_form=True)
            pem = ssl.DER_cert_to_PEM_cert(der)
            return subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem,
                                  capture_output=True, text=True, check=True).stdout

        self.assertIn("first.mailroster.test", subject())
        said = self.reload(with_tls(*second))
        self.assertIn("configuration reloaded: smtp.tls_cert, smtp.tls_key", said)
        self.assertIn("second.mailroster.test", subject(), said)
        said = self.reload(self.text)  # no TLS: needs a restart; the certificate stays
        self.assertIn("(restart to apply): smtp.tls_cert, smtp.tls_key", said)
        self.assertIn("second.mailroster.test", subject())
        self.reload(with_tls(second[0], first[1]))  # a key that is not the certificate's
        deadline = time.time() + 10  # the certificates are read after the configuration
        while "cannot use TLS certificate" not in self.log_text():
            self.assertLess(time.time(), deadline, self.log_text())
            time.sleep(0.05)
        self.assertIn("second.mailroster.test", subject())

@unittest.skipUnless(databases.POSTGRES or "--postgres" in sys.argv,
                     "nodes share a database on PostgreSQL; a SQLite file has one node")
class SharedRateLimits(ServeTestCase):
    """Two nodes on one PostgreSQL database, as behind a load balancer: a harvester, or a
    password guesser, spread over both meets one limit, not one per node."""

    def start_node(self, config, name):
        proc, log, ports = start_serve(config, os.path.join(self.dir, name + ".log"))
        self.nodes.append((proc, log))
        return ports

    def setUp(self):
        super().setUp()
        self.nodes = []
        config, self.db = quiet_gateway(self.dir, "", 'slow_after = 4\nrefuse_after = 4\nblock = "10m"\n')
        self.a = self.start_node(config, "a")
        self.b = self.start_node(config, "b")

    def tearDown(self):
        for proc, log in self.nodes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        super().tearDown()

    def rcpts(self, ports, addresses, source="127.0.0.1"):
        s = smtplib.SMTP("127.0.0.1", ports["inbound SMTP"], timeout=20,
                         source_address=(source, 0))
        s.ehlo("harvester.example")
        s.mail("x@example.org")
        codes = [s.rcpt(a)[0] for a in addresses]
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            s.quit()
        return codes

    def wait_heard(self, ports, limit, count):
        name = 'mailroster_rate_limit_shared_total{limit="%s",direction="heard"}' % limit
        deadline = time.time() + 10
        while metric(ports["admin HTTP"], name) < count:
            self.assertLess(time.time(), deadline, "the node did not hear the other's counts")
            time.sleep(0.1)

    def test_a_verify_flush_at_one_node_is_done_by_both(self):
        """Each node keeps its own callout answers (positives for days): `verify flush` asked
        of one node is passed on, and the other forgets them too."""
        spool = os.path.join(self.dir, "spool-flush")
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_mta.py"), "--spool", spool,
                              "--accept", "zoe"], stdout=subprocess.PIPE, text=True)
        self.addCleanup(p.wait)
        self.addCleanup(p.kill)
        mta = int(p.stdout.readline().split()[-1])
        run_cli(self.db, "company", "add", "flushco")
        run_cli(self.db, "domain", "add", "flush.example", "--company", "flushco",
                "--destination", "127.0.0.1:%d" % mta)
        run_cli(self.db, "discovery", "set", "--company", "flushco", "enabled=true")
        entries = lambda ports: metric(ports["admin HTTP"], "mailroster_verify_cache_entries")
        for ports in (self.a, self.b):
            self.assertEqual(self.rcpts(ports, ["zoe@flush.example"]), [250])
            self.assertGreaterEqual(entries(ports), 1)
        # The CLI asks node a (the configuration names its admin port).
        with open(os.path.join(self.dir, "mailroster.toml")) as f:
            text = f.read()
        at_a = os.path.join(self.dir, "at-a.toml")
        with open(at_a, "w") as f:
            f.write(text.replace('[admin]\nlisten = "127.0.0.1:0"',
                                 '[admin]\nlisten = "127.0.0.1:%d"' % self.a["admin HTTP"]))
        out = subprocess.run([BINARY, "--config", at_a, "verify", "flush", "--domain", "flush.example"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(entries(self.a), 0)
        deadline = time.time() + 10
        while entries(self.b) > 0:
            self.assertLess(time.time(), deadline, "node b kept its answers")
            time.sleep(0.1)
        with open(os.path.join(self.dir, "b.log")) as f:
            self.assertIn("answer(s) forgotten (domain:flush.example), as another node was asked", f.read())

    def test_a_harvester_spread_over_two_nodes_is_refused_by_both(self):
        self.assertEqual(self.rcpts(self.a, ["g1@quiet.example", "g2@quiet.example"]), [550, 550])
        self.wait_heard(self.b, "harvest", 2)
        self.assertEqual(metric(self.a["admin HTTP"],
                                'mailroster_rate_limit_shared_total{limit="harvest",direction="sent"}'), 2)
        # On its own, b has seen 2 of the 4: a node that counted alone would answer 550 again.
        self.assertEqual(self.rcpts(self.b, ["g3@quiet.example", "g4@quiet.example",
                                             "g5@quiet.example"]), [550, 550, 421])
        self.wait_heard(self.a, "harvest", 2)
        self.assertEqual(self.rcpts(self.a, ["g6@quiet.example"]), [421])
        # Per client: another address is not refused by either node.
        self.assertEqual(self.rcpts(self.a, ["g7@quiet.example"], source="127.0.0.2"), [550])
        self.assertEqual(self.rcpts(self.b, ["g8@quiet.example"], source="127.0.0.2"), [550])
        self.assertEqual(metric(self.a["admin HTTP"], "mailroster_harvest_clients"), 2)
        self.assertEqual(metric(self.a["admin HTTP"], "mailroster_harvest_blocked_clients"), 1)

    def test_node_list_names_both_nodes_and_the_one_running_the_scheduler(self):
        version = subprocess.run([BINARY, "--version"], capture_output=True, text=True).stdout
        deadline = time.time() + 10
        while True:
            nodes = json.loads(run_cli(self.db, "node", "list", "--json"))
            if len(nodes) == 2 and sum(n["scheduler"] for n in nodes) == 1:
                break
            self.assertLess(time.time(), deadline, nodes)
            time.sleep(0.1)
        self.assertTrue(all(n["alive"] for n in nodes))
        self.assertEqual({"mailroster " + n["version"] for n in nodes}, {version.strip()})
        self.assertEqual(sorted(re.search(r"inbound SMTP 127\.0\.0\.1:(\d+)", n["serving"]).group(1)
                                for n in nodes),
                         sorted(str(p["inbound SMTP"]) for p in (self.a, self.b)))
        text = run_cli(self.db, "node", "list")
        self.assertRegex(text, r"HOST +VERSION +STARTED +STATE +SCHEDULER +SERVING")
        self.assertEqual(text.count(" alive "), 2)
        # A node that stops says so: the other is left.
        proc, _ = self.nodes[1]
        proc.terminate()
        self.assertEqual(proc.wait(10), 0)
        left = json.loads(run_cli(self.db, "node", "list", "--json"))
        self.assertEqual([str(self.a["inbound SMTP"]) in n["serving"] for n in left], [True])

    def login(self, ports, password):
        request = urllib.request.Request(
            "http://127.0.0.1:%d/api/v1/login" % ports["admin HTTP"], method="POST",
            data=json.dumps({"email": "admin@quiet.example", "password": password}).encode(),
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def test_a_password_guesser_spread_over_two_nodes_meets_one_limit(self):
        subprocess.run([BINARY, "--db", self.db, "login", "add", "admin@quiet.example",
                        "--company", "quiet"], input="correct horse battery\n", text=True,
                       check=True, capture_output=True)
        self.assertEqual([self.login(self.a, "guess%d" % i) for i in range(3)], [401] * 3)
        self.wait_heard(self.b, "logins", 6)  # per client and per email
        # 5 failures in 15 minutes are allowed: b has heard 3 and counts 2 more of its own; a
        # node that counted alone would let the right password in after them.
        self.assertEqual([self.login(self.b, "guess%d" % i) for i in range(3, 5)], [401] * 2)
        self.assertEqual(self.login(self.b, "correct horse battery"), 429)
        self.wait_heard(self.a, "logins", 4)
        self.assertEqual(self.login(self.a, "correct horse battery"), 429)


if __name__ == "__main__":
    BINARY, argv = databases.suite_arguments()
    unittest.main(argv=argv, verbosity=2)
