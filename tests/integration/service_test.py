#!/usr/bin/env python3
"""`serve` under a service manager, end to end.

systemd's side of sd_notify(3) is a datagram socket named by $NOTIFY_SOCKET; this test binds
one and reads what serve says on it: READY=1 once every listener is bound (with a STATUS line
naming them), WATCHDOG=1 at half the $WATCHDOG_USEC interval, RELOADING=1 then READY=1 around
a SIGHUP, STOPPING=1 at SIGTERM. A SIGHUP reads the TLS certificates again (inbound and
outbound STARTTLS, admin HTTPS): new connections get the renewed certificate, a session under
way keeps its own, and files that cannot be used leave the certificate in use. The shipped
unit file (packaging/mailroster.service.in, as configured into the build) is checked by
systemd's own `systemd-analyze verify` and `security`. With $JOURNAL_STREAM naming its stderr,
serve writes log lines as the journal reads them: syslog priority first, no timestamp.
Usage: service_test.py --binary build/mailroster
"""
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time
import unittest
import urllib.request

import databases
from certificates import self_signed
import smtp_gateway_test as gw
from databases import database_toml, new_database


def der(cert_path):
    with open(cert_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def not_after(cert_path):
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", cert_path],
                         check=True, capture_output=True, text=True).stdout
    return int(ssl.cert_time_to_seconds(out.strip().split("=", 1)[1]))


def install(source, target):
    """Puts a file in place by rename, as a certificate renewal does."""
    shutil.copyfile(source, target + ".new")
    os.replace(target + ".new", target)


UNVERIFIED = ssl.create_default_context()
UNVERIFIED.check_hostname = False
UNVERIFIED.verify_mode = ssl.CERT_NONE


class Notifications:
    """The service manager's end of sd_notify(3)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.watchdogs = []  # when each WATCHDOG=1 came

    def close(self):
        self.sock.close()

    def receive(self, timeout):
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.split("\n") if line)

    def wait_for(self, key, timeout=10):
        """The next message that sets `key` (watchdog pings on the way are counted)."""
        deadline = time.time() + timeout
        while True:
            message = self.receive(max(0.01, deadline - time.time()))
            if "WATCHDOG" in message:
                self.watchdogs.append(time.time())
            if key in message:
                return message


class ServiceManager(gw.ServeTestCase):
    PREFIX = "mailroster-service-"

    def setUp(self):
        super().setUp()
        self.notifications = None

    def tearDown(self):
        if self.notifications:
            self.notifications.close()
        super().tearDown()

    def start(self, tls, env):
        db = new_database(self.dir)
        keys = ""
        if tls:
            keys = 'tls_cert = "%s"\ntls_key = "%s"\n' % (os.path.join(self.dir, "cert.pem"),
                                                          os.path.join(self.dir, "key.pem"))
        config = os.path.join(self.dir, "mailroster.toml")
        with open(config, "w") as f:
            f.write('[database]\n%s\n[admin]\nlisten = "127.0.0.1:0"\n%s'
                    '[smtp]\ninbound_listen = "127.0.0.1:0"\nhostname = "mx.mailroster.test"\n%s'
                    '[outbound]\nlisten = "127.0.0.1:0"\n' % (database_toml(db, self.dir), keys, keys))
        self.log_path = os.path.join(self.dir, "serve.log")
        gw.BINARY = BINARY
        environment = {k: v for k, v in os.environ.items()
                       if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        environment.update(env)
        self.serve, self.log, ports = gw.start_serve(config, self.log_path, environment)
        return ports

    def starttls_certificate(self, port):
        """The certificate a new session is given after STARTTLS, and the session."""
        client = smtplib.SMTP("127.0.0.1", port, timeout=10)
        client.ehlo("client.example")
        client.starttls(context=UNVERIFIED)
        client.ehlo("client.example")
        return client.sock.getpeercert(binary_form=True), client

    def served(self, ports):
        """The certificate each listener gives a new connection."""
        got = {}
        for name, port in (("inbound", ports["inbound"]), ("outbound", ports["outbound"])):
            got[name], client = self.starttls_certificate(port)
            client.quit()
        got["admin"] = ssl.PEM_cert_to_DER_cert(
            ssl.get_server_certificate(("127.0.0.1", ports["admin"])))
        return got

    def metrics(self, admin_port):
        with urllib.request.urlopen("https://127.0.0.1:%d/metrics" % admin_port,
                                    context=UNVERIFIED, timeout=10) as r:
            text = r.read().decode()
        return {m.group(1): float(m.group(2))
                for m in re.finditer(r"^(mailroster_(?:tls|smtp_starttls)_\w+\{[^}]*\}) (\S+)$", text, re.M)}

    def test_ready_watchdog_reload_and_stop(self):
        a = self_signed(self.dir, "a.mailroster.test", 30)
        b = self_signed(self.dir, "b.mailroster.test", 3)
        c = self_signed(self.dir, "c.mailroster.test", 30)
        install(a[0], os.path.join(self.dir, "cert.pem"))
        install(a[1], os.path.join(self.dir, "key.pem"))
        self.notifications = Notifications(os.path.join(self.dir, "notify.sock"))
        self.start(tls=True, env={"NOTIFY_SOCKET": os.path.join(self.dir, "notify.sock"),
                                  "WATCHDOG_USEC": "300000"})

        # READY=1 names the three listeners, which take connections at once.
        ready = self.notifications.wait_for("READY")
        serving = ready["STATUS"]
        m = re.fullmatch(r"serving: inbound SMTP 127\.0\.0\.1:(\d+), outbound SMTP 127\.0\.0\.1:(\d+), "
                         r"admin HTTPS 127\.0\.0\.1:(\d+)", serving)
        self.assertTrue(m, serving)
        ports = dict(zip(("inbound", "outbound", "admin"), map(int, m.groups())))
        for port in ports.values():
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

        # The watchdog: every 150 ms (half of 300 ms).
        first = len(self.notifications.watchdogs)
        deadline = time.time() + 1.0
        while time.time() < deadline:
            try:
                self.notifications.wait_for("WATCHDOG", timeout=deadline - time.time())
            except socket.timeout:
                break
        self.assertGreaterEqual(len(self.notifications.watchdogs) - first, 4)

        self.assertEqual(self.served(ports), {k: der(a[0]) for k in ports})
        # No mail has gone through yet: the message and RCPT counters are there all the same, at
        # 0, so that a rate or an alert over them has a series from the start.
        with urllib.request.urlopen("https://127.0.0.1:%d/metrics" % ports["admin"],
                                    context=UNVERIFIED, timeout=10) as r:
            text = r.read().decode()
        for series in ('mailroster_inbound_messages_total{result="deferred"}',
                       'mailroster_inbound_messages_total{result="delivered"}',
                       'mailroster_inbound_rcpt_total{result="callout_try_later"}',
                       'mailroster_outbound_messages_total{result="sender_denied"}'):
            self.assertIn("\n%s 0\n" % series, text)
        # And so has every counter (a family with no series is still named, with its TYPE).
        counters = set(re.findall(r"^# TYPE (\S+) counter$", text, re.M))
        shown = set(re.findall(r"^([a-z_]+)[{ ]", text, re.M))
        self.assertGreater(len(counters), 20)
        self.assertEqual(counters - shown, set(), "counters with no series before their first event")
        expiry = self.metrics(ports["admin"])
        for name in ports:
            self.assertEqual(expiry['mailroster_tls_certificate_expiry_timestamp_seconds{listener="%s"}'
                                    % name], not_after(a[0]))
        self.assertIn("inbound TLS certificate CN=a.mailroster.test, expires", self.log_text())
        under_way_cert, under_way = self.starttls_certificate(ports["inbound"])

        # Renewed (certificate and key), then SIGHUP: new connections get the new one.
        install(b[0], os.path.join(self.dir, "cert.pem"))
        install(b[1], os.path.join(self.dir, "key.pem"))
        self.serve.send_signal(signal.SIGHUP)
        self.notifications.wait_for("RELOADING")
        self.assertEqual(self.notifications.wait_for("READY")["STATUS"], serving)
        self.assertEqual(self.served(ports), {k: der(b[0]) for k in ports})
        metrics = self.metrics(ports["admin"])
        for name in ports:
            self.assertEqual(metrics['mailroster_tls_certificate_expiry_timestamp_seconds{listener="%s"}'
                                     % name], not_after(b[0]))
            self.assertEqual(metrics['mailroster_tls_reloads_total{listener="%s",result="ok"}' % name], 1)
        self.assertRegex(self.log_text(), r"inbound TLS certificate CN=b\.mailroster\.test expires in [23] day\(s\)")
        # The session that began before goes on, with the certificate it began with.
        self.assertEqual(under_way.noop()[0], 250)
        self.assertEqual(under_way_cert, der(a[0]))

        # Half a renewal (a new certificate, the old key): refused; the one in use stays.
        install(c[0], os.path.join(self.dir, "cert.pem"))
        self.serve.send_signal(signal.SIGHUP)
        self.notifications.wait_for("RELOADING")
        self.assertEqual(self.notifications.wait_for("READY")["STATUS"],
                         serving + "; 3 TLS certificate(s) not reloaded (see the log)")
        self.assertEqual(self.served(ports), {k: der(b[0]) for k in ports})
        metrics = self.metrics(ports["admin"])
        for name in ports:
            self.assertEqual(metrics['mailroster_tls_reloads_total{listener="%s",result="failed"}' % name], 1)
            self.assertEqual(metrics['mailroster_tls_certificate_expiry_timestamp_seconds{listener="%s"}'
                                     % name], not_after(b[0]))
        self.assertRegex(self.log_text(), r"inbound: cannot use TLS certificate '.*cert\.pem' with key "
                                          r"'.*key\.pem': .*; the certificate loaded before stays in use")

        # A client that says STARTTLS and then speaks no TLS: a failed handshake, counted.
        with socket.create_connection(("127.0.0.1", ports["inbound"]), timeout=10) as raw:
            self.assertTrue(raw.recv(512).startswith(b"220 "))
            raw.sendall(b"STARTTLS\r\n")
            self.assertTrue(raw.recv(512).startswith(b"220 "))
            raw.sendall(b"this is no TLS client hello\r\n" * 8)
            self.assertEqual(raw.recv(512), b"")  # closed
        metrics = self.metrics(ports["admin"])
        self.assertEqual(metrics['mailroster_smtp_starttls_total{listener="inbound",result="failed"}'], 1)
        self.assertEqual(metrics['mailroster_smtp_starttls_total{listener="outbound",result="failed"}'], 0)
        # served() three times and the session under way on inbound, served() on outbound.
        self.assertEqual(metrics['mailroster_smtp_starttls_total{listener="inbound",result="ok"}'], 4)
        self.assertEqual(metrics['mailroster_smtp_starttls_total{listener="outbound",result="ok"}'], 3)

        # SIGTERM: STOPPING=1 while it drains, then exit 0.
        self.serve.send_signal(signal.SIGTERM)
        stopping = self.notifications.wait_for("STOPPING")
        self.assertRegex(stopping["STATUS"], r"^draining \d+ SMTP session\(s\)$")
        self.assertEqual(self.serve.wait(10), 0)
        under_way.close()

    def test_sighup_without_tls_keeps_serving(self):
        ports = self.start(tls=False, env={})
        self.serve.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "configuration reloaded" not in self.log_text() and time.time() < deadline:
            time.sleep(0.05)
        self.assertIn("received SIGHUP: reading the configuration again", self.log_text())
        self.assertIn("configuration reloaded: no change", self.log_text())
        self.assertIsNone(self.serve.poll())
        with socket.create_connection(("127.0.0.1", ports["inbound SMTP"]), timeout=5) as s:
            self.assertTrue(s.recv(512).startswith(b"220 "))

    def test_log_lines_for_the_journal_carry_their_priority(self):
        # systemd names the journal stream it gives serve as stderr by device and inode.
        self.log_path = os.path.join(self.dir, "serve.log")
        open(self.log_path, "w").close()
        st = os.stat(self.log_path)  # the same file (inode) start_serve opens again
        self_signed(self.dir, "soon.mailroster.test", 3)
        install(os.path.join(self.dir, "soon.mailroster.test.pem"), os.path.join(self.dir, "cert.pem"))
        install(os.path.join(self.dir, "soon.mailroster.test.key"), os.path.join(self.dir, "key.pem"))
        self.start(tls=True, env={"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
        self.serve.send_signal(signal.SIGTERM)
        self.assertEqual(self.serve.wait(10), 0)
        lines = self.log_text().splitlines()
        self.assertIn("<6>info stopped", lines)
        self.assertTrue(any(re.fullmatch(r"<4>warning inbound TLS certificate CN=soon\.mailroster\.test "
                                         r"expires in [23] day\(s\), on .*", l) for l in lines), lines)
        self.assertTrue(all(re.match(r"<[3467]>(info|warning|error|debug) ", l) for l in lines), lines)

        # Another stream (a terminal, a file): the timestamped lines.
        self.serve = None
        self.log.close()
        self.start(tls=True, env={"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino + 1)})
        self.serve.send_signal(signal.SIGTERM)
        self.assertEqual(self.serve.wait(10), 0)
        self.assertRegex(self.log_text(), r"(?m)^\d{4}-\d\d-\d\dT[\d:.]+ info stopped$")

    def test_the_unit_file_passes_systemds_checks(self):
        configured = os.path.join(os.path.dirname(BINARY), "packaging", "mailroster.service")
        with open(configured) as f:
            unit = f.read()
        installed = re.search(r"^ExecStart=(\S+) serve$", unit, re.M).group(1)
        # verify wants the programs the unit runs to exist: the build's, not yet installed.
        path = os.path.join(self.dir, "mailroster.service")
        with open(path, "w") as f:
            f.write(unit.replace(installed, os.path.abspath(BINARY)))
        verify = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True)
        self.assertEqual((verify.returncode, verify.stderr), (0, ""))
        self.assertIn("Type=notify\n", unit)
        self.assertIn("ExecReload=/bin/kill -HUP $MAINPID\n", unit)
        self.assertIn("Environment=MAILROSTER_CONFIG=/etc/mailroster/mailroster.toml\n", unit)
        # Room for the drain: [smtp] shutdown_grace is 60 s by default.
        self.assertGreater(int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M).group(1)), 60)
        security = subprocess.run(["systemd-analyze", "security", "--offline=true", path],
                                  capture_output=True, text=True)
        level = re.search(r"Overall exposure level for mailroster\.service: ([\d.]+)", security.stdout)
        self.assertTrue(level, security.stdout + security.stderr)
        self.assertLessEqual(float(level.group(1)), 2.0, security.stdout)


if __name__ == "__main__":
    BINARY, argv = databases.suite_arguments()
    unittest.main(argv=argv, verbosity=2)
