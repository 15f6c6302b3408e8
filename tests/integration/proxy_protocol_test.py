#!/usr/bin/env python3
"""The gateway behind a real HAProxy speaking the PROXY protocol ([smtp] / [outbound]
proxy_protocol), end to end.

Starts Debian's haproxy on loopback ports in front of `mailroster serve`: one frontend sends
PROXY v1 (`send-proxy`), one v2 (`send-proxy-v2`), one v2 to the outbound listener. Clients
connect from other loopback addresses (127.0.0.2, ...), so that the address HAProxy names differs
from HAProxy's own (127.0.0.1), and the test sees which one the gateway keys on: the log lines,
the outbound relay networks and the harvest guard. Usage: proxy_protocol_test.py --binary
build/mailroster
"""
import os
import re
import shutil
import socket
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest

import databases
import smtp_gateway_test as gw
from haproxy import HAProxy
from databases import database_toml, new_database

HERE = os.path.dirname(os.path.abspath(__file__))


class BehindHAProxy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mailroster-proxy-")
        cls.spool = os.path.join(cls.dir, "spool")
        cls.mta = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_mta.py"), "--spool", cls.spool,
                                    "--accept", "alice,carol"], stdout=subprocess.PIPE, text=True)
        mta_port = int(cls.mta.stdout.readline().split()[-1])
        cls.db = new_database(cls.dir)
        gw.BINARY = BINARY
        cli = lambda *args: gw.run_cli(cls.db, *args)
        # The company's own mail server is 127.0.0.2: HAProxy (127.0.0.1) is not in its relay
        # networks, so outbound mail passes only when the gateway believes the PROXY header.
        cli("company", "add", "acme", "--relay-network", "127.0.0.2/32")
        cli("domain", "add", "acme.example", "--company", "acme", "--destination", "127.0.0.1:%d" % mta_port)
        cli("user", "add", "alice@acme.example")
        cli("company", "add", "quiet")  # discovery off: unknown recipients are 550 at once
        cli("domain", "add", "quiet.example", "--company", "quiet", "--destination", "127.0.0.1:%d" % mta_port)
        cli("user", "add", "alice@quiet.example")
        config = os.path.join(cls.dir, "mailroster.toml")
        with open(config, "w") as f:
            f.write('[database]\n%s\n[admin]\nlisten = "127.0.0.1:0"\n'
                    '[smtp]\ninbound_listen = "127.0.0.1:0"\nhostname = "mx.mailroster.test"\n'
                    'proxy_protocol = true\nproxy_from = ["127.0.0.1"]\nmax_connections_per_client = 3\n'
                    '[outbound]\nlisten = "127.0.0.1:0"\nnext_hop = "127.0.0.1:%d"\n'
                    'proxy_protocol = true\nproxy_from = ["127.0.0.1/32"]\n'
                    '[harvest]\nslow_after = 2\nrefuse_after = 4\ndelay = "1s"\n'
                    'exempt = ["127.0.0.6", "2001:db8:6::/48"]\n'
                    % (database_toml(cls.db, cls.dir), mta_port))
        gw.start_gateway(cls, config)

        cls.v1, cls.v2, cls.out = gw.free_port(), gw.free_port(), gw.free_port()
        cls.haproxy = HAProxy(
            cls.dir,
            "global\n  maxconn 200\n"
            "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n"
            "frontend in_v1\n  bind 127.0.0.1:%d\n  default_backend gw_v1\n"
            "backend gw_v1\n  server gw 127.0.0.1:%d send-proxy\n"
            "frontend in_v2\n  bind 127.0.0.1:%d\n  default_backend gw_v2\n"
            "backend gw_v2\n  server gw 127.0.0.1:%d send-proxy-v2\n"
            "frontend out_v2\n  bind 127.0.0.1:%d\n  default_backend gw_out\n"
            "backend gw_out\n  server gw 127.0.0.1:%d send-proxy-v2\n"
            % (cls.v1, cls.port, cls.v2, cls.port, cls.out, cls.outbound_port),
            (cls.v1, cls.v2, cls.out))

    @classmethod
    def tearDownClass(cls):
        cls.haproxy.stop()
        gw.stop_gateway(cls)
        cls.mta.kill()
        cls.mta.wait()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def smtp(self, port, client_ip):
        """An SMTP session through HAProxy's frontend `port`, from the loopback address client_ip."""
        s = smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=(client_ip, 0))
        s.ehlo("client.example.org")
        return s

    def log_line(self, pattern):
        for _ in range(200):
            with open(self.log_path) as f:
                m = re.search(pattern, f.read(), re.M)
            if m:
                return m
            time.sleep(0.05)
        self.fail("no log line matches " + pattern)

    def test_inbound_mail_is_logged_with_the_client_haproxy_names_v1_and_v2(self):
        for port, client, subject in [(self.v1, "127.0.0.2", "via v1"), (self.v2, "127.0.0.3", "via v2")]:
            with self.smtp(port, client) as s:
                s.mail("bob@example.org")
                self.assertEqual(s.rcpt("alice@acme.example")[0], 250)
                code, text = s.data(gw.message("alice@acme.example", subject))
                self.assertEqual(code, 250, text)
                queue_id = re.search(rb"delivered as (\S+)", text).group(1).decode()
            line = self.log_line(r"^.*inbound id=%s .*$" % re.escape(queue_id)).group(0)
            self.assertIn("client=%s " % client, line)
            relayed = []
            for name in os.listdir(self.spool):
                if name.endswith(".eml"):
                    with open(os.path.join(self.spool, name), "rb") as f:
                        relayed.append(f.read().decode())
            got = [m for m in relayed if "Subject: %s\r\n" % subject in m]
            self.assertEqual(len(got), 1)
            self.assertTrue(got[0].startswith("Received: from client.example.org ([%s])" % client), got[0][:200])

    def test_outbound_relay_networks_see_the_companys_server_not_haproxy(self):
        with self.smtp(self.out, "127.0.0.2") as s:  # acme's relay network
            self.assertEqual(s.mail("carol@acme.example")[0], 250)
            self.assertEqual(s.rcpt("someone@example.net")[0], 250)
        with self.smtp(self.out, "127.0.0.3") as s:  # not acme's, though HAProxy is the same
            code, text = s.mail("carol@acme.example")
            self.assertEqual(code, 550, text)
            self.assertIn(b"5.7.1", text)

    def test_the_harvest_guard_refuses_the_harvester_and_not_its_neighbours(self):
        with self.smtp(self.v2, "127.0.0.4") as s:
            s.mail("x@example.org")
            codes = [s.rcpt("guess%d@quiet.example" % i)[0] for i in range(5)]
        self.assertEqual(codes, [550, 550, 550, 550, 421])
        with self.smtp(self.v2, "127.0.0.4") as s:  # the harvester stays refused
            s.mail("x@example.org")
            self.assertEqual(s.rcpt("alice@quiet.example")[0], 421)
        with self.smtp(self.v2, "127.0.0.5") as s:  # another client behind the same HAProxy
            s.mail("x@example.org")
            self.assertEqual(s.rcpt("alice@quiet.example")[0], 250)

    def test_an_exempt_sender_is_never_slowed_or_refused(self):
        # A partner's or a mail provider's servers send to typos and departed staff all day.
        started = time.monotonic()
        with self.smtp(self.v2, "127.0.0.6") as s:
            s.mail("x@example.org")
            codes = [s.rcpt("typo%d@quiet.example" % i)[0] for i in range(8)]
        with self.smtp(self.v2, "127.0.0.6") as s:
            s.mail("x@example.org")
            codes.append(s.rcpt("alice@quiet.example")[0])
        self.assertEqual(codes, [550] * 8 + [250])
        self.assertLess(time.monotonic() - started, 5, "slowed: 1 s a RCPT past the second")
        # Its IPv4-mapped form, as a dual-stack listener names it, and an IPv6 network.
        for client in ("::ffff:127.0.0.6", "2001:db8:6:1::9"):
            with self.FromIPv6(client, self.port) as s:
                s.ehlo("client.example.org")
                s.mail("x@example.org")
                codes = [s.rcpt("typo%d@quiet.example" % i)[0] for i in range(6)]
            self.assertEqual(codes, [550] * 6, client)

    class FromIPv6(smtplib.SMTP):
        """A session whose PROXY header names an IPv6 client."""
        def __init__(self, client, port):
            self.client = client
            super().__init__("127.0.0.1", port, timeout=20)

        def _get_socket(self, host, port, timeout):
            s = socket.create_connection((host, port), timeout)
            s.sendall(b"PROXY TCP6 %s 2001:db8::25 50000 25\r\n" % self.client.encode())
            return s

    def test_an_ipv6_harvester_is_counted_by_its_64_not_by_each_address(self):
        # A site is given a /64 of IPv6 and may send from any address in it: each address a
        # new budget would let a harvester through. The PROXY header names the IPv6 client.
        codes = []
        for i in range(5):
            with self.FromIPv6("2001:db8:1:2::%x" % (i + 1), self.port) as s:
                s.ehlo("client.example.org")
                s.mail("x@example.org")
                code, text = s.rcpt("guess%d@quiet.example" % i)
                codes.append(code)
        self.assertEqual(codes, [550, 550, 550, 550, 421])
        self.assertIn(b"too many unknown recipients from 2001:db8:1:2::/64", text)
        self.log_line(r"2001:db8:1:2::5 refused: too many unknown recipients from 2001:db8:1:2::/64")
        with self.FromIPv6("2001:db8:1:3::1", self.port) as s:  # the next /64: someone else
            s.ehlo("client.example.org")
            s.mail("x@example.org")
            self.assertEqual(s.rcpt("alice@quiet.example")[0], 250)

    def test_connections_are_limited_per_ipv6_64_not_per_address(self):
        def greeting(client):
            c = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            c.sendall(b"PROXY TCP6 %s 2001:db8::25 50000 25\r\n" % client.encode())
            return c, gw.recv_until(c, b"\r\n")

        held = []
        try:
            for i in range(3):  # max_connections_per_client = 3
                c, got = greeting("2001:db8:5:6::%x" % (i + 1))
                held.append(c)
                self.assertTrue(got.startswith(b"220 "), got)
            c, got = greeting("2001:db8:5:6:ffff::1")  # the same /64, another address
            held.append(c)
            self.assertTrue(got.startswith(b"421 4.7.0 mx.mailroster.test too many connections from "
                                           b"2001:db8:5:6::/64"), got)
            c, got = greeting("2001:db8:5:7::1")  # the next /64
            held.append(c)
            self.assertTrue(got.startswith(b"220 "), got)
        finally:
            for c in held:
                c.close()

    def test_a_header_and_pipelined_commands_in_one_packet(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as c:
            c.sendall(b"PROXY TCP4 198.51.100.7 127.0.0.1 50000 25\r\n")
            self.assertTrue(c.recv(4096).startswith(b"220 "))
            c.sendall(b"EHLO client.example.org\r\nMAIL FROM:<bob@example.org>\r\n"
                      b"RCPT TO:<alice@acme.example>\r\nQUIT\r\n")
            got = gw.recv_until(c, b"\r\n221 ")
        self.assertIn(b"250 2.1.5", got)
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as c:
            c.sendall(b"PROXY TCP4 198.51.100.8 127.0.0.1 50000 25\r\nEHLO early.example\r\n")
            got = gw.recv_until(c, b"\r\n250 ")
        self.assertTrue(got.startswith(b"220 "), got)  # the bytes after the header are the client's
        self.assertIn(b"250-mx.mailroster.test greets early.example", got)

    def test_a_connection_without_a_header_is_closed_without_a_greeting(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as c:
            c.sendall(b"EHLO client.example.org\r\n")
            self.assertEqual(c.recv(4096), b"")
        self.log_line(r"closed: the connection did not begin with a PROXY header")

    def test_a_header_from_outside_proxy_from_is_not_believed(self):
        c = socket.socket()
        c.bind(("127.0.0.6", 0))
        c.settimeout(10)
        c.connect(("127.0.0.1", self.port))
        try:
            c.sendall(b"PROXY TCP4 127.0.0.2 127.0.0.1 50000 25\r\n")
            self.assertEqual(c.recv(4096), b"")
        except ConnectionResetError:
            pass  # closed before the header was read: as good
        finally:
            c.close()
        self.log_line(r"connection from 127\.0\.0\.6 closed: not a proxy_from address")


if __name__ == "__main__":
    BINARY, argv = databases.suite_arguments()
    unittest.main(argv=argv, verbosity=2)
