#!/usr/bin/env python3
"""The admin API over real HTTP against `mailroster serve`: login and sessions, roles,
tenant isolation (another company's objects are 404), CSRF, the login rate limit, strict
JSON bodies and the OpenAPI document.

    api_test.py --binary build/mailroster
"""
import datetime
import http.client
import json
import urllib.parse
import urllib.request
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import databases
import smtp_gateway_test as gw
from certificates import self_signed
from haproxy import HAProxy
from databases import database_toml, new_database

BINARY = None
PASSWORD = "correct horse battery"


def cli(db, *args, stdin=""):
    r = subprocess.run([BINARY, "--db", db, *args], input=stdin, text=True, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"{args}: {r.stderr}")
    return r.stdout


class Client:
    """One browser: keeps its session cookie and CSRF token."""

    def __init__(self, port):
        self.port, self.cookie, self.csrf = port, None, None

    def call(self, method, path, body=None, raw=None, csrf=True, content_type="application/json"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": content_type}
        if self.cookie:
            headers["Cookie"] = self.cookie
        if csrf and self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        text = r.read().decode()
        cookie = r.getheader("Set-Cookie")
        conn.close()
        return r.status, (json.loads(text) if text else None), cookie

    def fetch(self, path):
        """GET of a file: status, headers, bytes."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", path, headers={"Cookie": self.cookie} if self.cookie else {})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def login(self, email, password=PASSWORD):
        status, body, cookie = self.call("POST", "/api/v1/login",
                                         {"email": email, "password": password})
        if status == 200:
            self.cookie = cookie.split(";")[0]
            self.csrf = body["csrf_token"]
        return status, body, cookie


class Api(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mailroster-api-")
        db = cls.db = new_database(cls.dir)
        for name in ("acme", "globex"):
            cli(db, "company", "add", name)
            cli(db, "domain", "add", f"{name}.example", "--company", name,
                "--destination", "127.0.0.1:25")
        cli(db, "user", "add", "alice@acme.example", "--first-name", "Alice")
        cli(db, "user", "add", "bob@acme.example", "--role", "silent_user")
        cli(db, "user", "add", "hank@globex.example")
        cli(db, "operator", "add", "ops@mailroster.example", stdin=PASSWORD + "\n")
        cli(db, "login", "add", "admin@acme.example", "--company", "acme", stdin=PASSWORD + "\n")
        cli(db, "login", "add", "alice@acme.example", "--role", "end_user", stdin=PASSWORD + "\n")
        users = json.loads(cli(db, "user", "list", "--json"))
        cls.ids = {u["address"]: u["id"] for u in users}
        # The relay password links are mailed through ([reports] relay): a mail server that
        # takes any address and keeps what it gets.
        cls.spool = os.path.join(cls.dir, "spool")
        cls.mta = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "fake_mta.py"),
                                    "--spool", cls.spool, "--catch-all"], stdout=subprocess.PIPE, text=True)
        mta_port = cls.mta_port = int(cls.mta.stdout.readline().split()[-1])
        config = os.path.join(cls.dir, "c.toml")
        with open(config, "w") as f:
            f.write(f'[database]\n{database_toml(db, cls.dir)}\n[admin]\nlisten = "127.0.0.1:0"\n'
                    '[smtp]\ninbound_listen = "127.0.0.1:0"\nhostname = "mx.mailroster.test"\n'
                    '[outbound]\nlisten = "127.0.0.1:0"\n'
                    f'[reports]\nrelay = "127.0.0.1:{mta_port}"\n')
        log_path = os.path.join(cls.dir, "serve.log")
        cls.log = open(log_path, "w")
        cls.proc = subprocess.Popen([BINARY, "--config", config, "serve"], stdout=cls.log,
                                    stderr=cls.log)
        deadline = time.time() + 10
        cls.port = None
        while time.time() < deadline and cls.port is None:
            m = re.search(r"admin HTTP listening on 127\.0\.0\.1:(\d+)", open(log_path).read())
            if m:
                cls.port = int(m.group(1))
            time.sleep(0.05)
        if cls.port is None:
            cls.proc.kill()
            raise RuntimeError("serve did not start: " + open(log_path).read())

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(10)
        cls.log.close()
        cls.mta.kill()
        cls.mta.wait()
        if os.environ.get("KEEP"):
            print("kept", cls.dir)
        else:
            shutil.rmtree(cls.dir, ignore_errors=True)

    def client(self, email=None):
        c = Client(self.port)
        if email:
            status, body, _ = c.login(email)
            self.assertEqual(status, 200, body)
        return c

    def mails_to(self, address):
        """The messages the relay got for address, oldest first."""
        out = []
        for name in sorted(os.listdir(self.spool)) if os.path.isdir(self.spool) else []:
            if name.endswith(".eml"):  # complete: its envelope (.json) was written before it
                with open(os.path.join(self.spool, name[:-4] + ".json")) as f:
                    if address in json.load(f)["to"]:
                        with open(os.path.join(self.spool, name), "rb") as m:
                            out.append(m.read().decode())
        return out

    def new_mail_to(self, address, before):
        """Waits for a message to address beyond the `before` first ones; returns it."""
        for _ in range(200):
            mails = self.mails_to(address)
            if len(mails) > before:
                return mails[before]
            time.sleep(0.05)
        self.fail("no mail to " + address)

    def link_token(self, mail):
        m = re.search(r"^http://127\.0\.0\.1:%d/#/reset/([A-Za-z0-9_-]{43})\r$" % self.port, mail, re.M)
        self.assertIsNotNone(m, mail)
        return m.group(1)

    def test_a_forgotten_password_is_set_again_by_the_mailed_link(self):
        email = "helpdesk@acme.example"
        cli(self.db, "login", "add", email, "--company", "acme", stdin=PASSWORD + "\n")
        before = len(self.mails_to(email))
        old_session = self.client(email)
        anyone = Client(self.port)
        status, body, _ = anyone.call("POST", "/api/v1/password/forgot", {"email": "HelpDesk@acme.example"})
        self.assertEqual(status, 202, body)
        mail = self.new_mail_to(email, before)
        self.assertIn("Subject: Set a new mailroster password\r\n", mail)
        self.assertIn("From: mailroster@mx.mailroster.test\r\n", mail)
        self.assertIn("The link works once, for 1 hour.", mail)
        token = self.link_token(mail)
        # A password too short is refused, and does not use the link up.
        status, body, _ = anyone.call("POST", "/api/v1/password/reset", {"token": token, "password": "short"})
        self.assertEqual((status, body["error"]["field"]), (400, "password"))
        new = "a new password, long enough"
        status, body, _ = anyone.call("POST", "/api/v1/password/reset", {"token": token, "password": new})
        self.assertEqual(status, 200, body)
        # Used once; the old password and the old sessions are gone; the new one logs in.
        status, body, _ = anyone.call("POST", "/api/v1/password/reset", {"token": token, "password": new})
        self.assertEqual((status, body["error"]["field"]), (400, "token"))
        self.assertEqual(old_session.call("GET", "/api/v1/me")[0], 401)
        self.assertEqual(Client(self.port).login(email)[0], 401)
        self.assertEqual(Client(self.port).login(email, new)[0], 200)
        # A made-up token, and bad bodies.
        self.assertEqual(anyone.call("POST", "/api/v1/password/reset",
                                     {"token": "x" * 43, "password": new})[0], 400)
        self.assertEqual(anyone.call("POST", "/api/v1/password/reset", {"password": new})[0], 400)
        self.assertEqual(anyone.call("POST", "/api/v1/password/forgot", {"email": 7})[0], 400)
        # No secret in the log: neither the link's token nor the password.
        log = open(os.path.join(self.dir, "serve.log")).read()
        self.assertNotIn(token, log)
        self.assertNotIn(new, log)
        self.assertIn("password link mailed to " + email, log)

    def test_forgot_answers_alike_for_an_email_that_does_not_log_in(self):
        for email in ("nobody@acme.example", "bob@acme.example"):  # bob: a user, no login
            status, body, _ = Client(self.port).call("POST", "/api/v1/password/forgot", {"email": email})
            self.assertEqual(status, 202)
            self.assertEqual(body["message"], f"if {email} logs in here, a link is on its way")
        time.sleep(0.3)
        self.assertEqual(self.mails_to("nobody@acme.example"), [])
        self.assertEqual(self.mails_to("bob@acme.example"), [])

    def test_an_invited_login_chooses_its_first_password(self):
        adm = self.client("admin@acme.example")
        email = "newadmin@acme.example"
        status, body, _ = adm.call("POST", "/api/v1/companies/acme/logins",
                                   {"email": email, "role": "company_admin"})
        self.assertEqual(status, 201, body)
        self.assertTrue(body["invited"])
        mail = self.new_mail_to(email, 0)
        self.assertIn("Subject: Your mailroster login\r\n", mail)
        self.assertIn("The link works once, for 7 days.", mail)
        status, _, _ = Client(self.port).call("POST", "/api/v1/password/reset",
                                              {"token": self.link_token(mail), "password": PASSWORD})
        self.assertEqual(status, 200)
        self.assertEqual(Client(self.port).login(email)[1]["company"], "acme")
        # With a password given, no invitation.
        status, body, _ = adm.call("POST", "/api/v1/companies/acme/logins",
                                   {"email": "third@acme.example", "role": "company_admin",
                                    "password": PASSWORD})
        self.assertEqual((status, body["invited"]), (201, False))
        time.sleep(0.3)
        self.assertEqual(self.mails_to("third@acme.example"), [])

    def test_the_cli_invites_by_mail_too(self):
        def cli_with(config_lines, *args, relay=None):
            config = os.path.join(self.dir, "cli.toml")
            with open(config, "w") as f:
                f.write(f'[database]\n{database_toml(self.db, self.dir)}\n'
                        f'[reports]\nrelay = "127.0.0.1:{relay or self.mta_port}"\n{config_lines}')
            return subprocess.run([BINARY, "--config", config, *args], text=True, capture_output=True)
        email = "cli-invite@acme.example"
        # The UI on every address and no public_url: no link can be made, and no login either.
        r = cli_with('[admin]\nlisten = "0.0.0.0:8080"\n', "login", "add", email, "--company", "acme", "--invite")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("set [admin] public_url", r.stderr)
        self.assertNotIn(email, cli(self.db, "login", "list"))
        r = cli_with('[admin]\npublic_url = "https://gw.example.com/"\n',
                     "login", "add", email, "--company", "acme", "--invite")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("invitation mailed to " + email, r.stdout)
        mail = self.new_mail_to(email, 0)
        self.assertIn("The link works once, for 7 days.", mail)
        token = re.search(r"^https://gw\.example\.com/#/reset/([\w-]{43})\r$", mail, re.M).group(1)
        status, _, _ = Client(self.port).call("POST", "/api/v1/password/reset",
                                              {"token": token, "password": PASSWORD})
        self.assertEqual(status, 200)
        self.assertEqual(Client(self.port).login(email)[0], 200)
        # `login invite` mails an existing login a new link; a relay that is down fails it.
        r = cli_with('[admin]\npublic_url = "https://gw.example.com/"\n', "login", "invite", email)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.new_mail_to(email, 1)
        r = cli_with('[admin]\npublic_url = "https://gw.example.com/"\n', "login", "invite", email, relay=1)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("link not mailed", r.stderr)

    def test_zz_password_mails_are_limited(self):
        codes = [Client(self.port).call("POST", "/api/v1/password/forgot", {"email": "nobody@acme.example"})[0]
                 for _ in range(6)]
        self.assertIn(429, codes)
        self.assertEqual(codes[-1], 429)

    def test_login_sets_a_strict_http_only_cookie_and_logout_ends_it(self):
        c = Client(self.port)
        status, body, cookie = c.login("ops@mailroster.example")
        self.assertEqual(status, 200)
        self.assertEqual(body["role"], "operator")
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        self.assertEqual(c.call("GET", "/api/v1/me")[0], 200)
        self.assertEqual(c.call("POST", "/api/v1/logout", {})[0], 200)
        self.assertEqual(c.call("GET", "/api/v1/me")[0], 401)
        self.assertEqual(Client(self.port).call("GET", "/api/v1/companies")[0], 401)

    def test_company_administrators_make_and_remove_logins(self):
        adm = self.client("admin@acme.example")
        add = lambda body, who=adm: who.call("POST", "/api/v1/companies/acme/logins", body)
        status, body, _ = adm.call("GET", "/api/v1/companies/acme/logins")
        self.assertEqual(status, 200)
        self.assertIn(("admin@acme.example", "company_admin"),
                      [(l["email"], l["role"]) for l in body["items"]])
        self.assertNotIn("ops@mailroster.example", [l["email"] for l in body["items"]])
        # The CLI's rules: an end user is a user of the company whose role is end_user; a
        # password has 10 characters at least; an email logs in once.
        for bad, status, field in [
                ({"email": "bob@acme.example", "role": "end_user", "password": PASSWORD}, 400, "role"),
                ({"email": "hank@globex.example", "role": "end_user", "password": PASSWORD}, 404, "email"),
                ({"email": "nobody@acme.example", "role": "end_user", "password": PASSWORD}, 404, "email"),
                ({"email": "new@acme.example", "role": "operator", "password": PASSWORD}, 400, "role"),
                ({"email": "not mail", "role": "company_admin", "password": PASSWORD}, 400, "email"),
                ({"email": "new@acme.example", "role": "company_admin", "password": "short"}, 400, "password"),
                ({"email": "admin@acme.example", "role": "company_admin", "password": PASSWORD}, 409, "email")]:
            got, answer, _ = add(bad)
            self.assertEqual((got, answer["error"]["field"]), (status, field), (bad, answer))
        self.assertEqual(add({"email": "carol@acme.example", "role": "end_user", "password": PASSWORD})[0], 404)
        self.assertEqual(adm.call("POST", "/api/v1/companies/acme/users",
                                  {"address": "carol@acme.example", "role": "end_user"})[0], 201)
        status, body, _ = add({"email": "carol@acme.example", "role": "end_user", "password": PASSWORD})
        self.assertEqual((status, body["role"]), (201, "end_user"), body)
        status, body, _ = add({"email": "Second@acme.example", "role": "company_admin",
                               "password": "second horse battery"})
        self.assertEqual((status, body["email"]), (201, "second@acme.example"), body)
        self.assertNotIn("password", json.dumps(body))  # nothing of it comes back
        carol, second = self.client("carol@acme.example"), Client(self.port)
        self.assertEqual(second.login("second@acme.example", "second horse battery")[0], 200)
        self.assertEqual(carol.call("GET", "/api/v1/companies/acme/logins")[0], 404)  # an end user
        self.assertEqual(self.client("ops@mailroster.example").call(
            "GET", "/api/v1/companies/globex/logins")[1]["items"], [])
        globex = Client(self.port)
        cli(self.db, "login", "add", "admin@globex.example", "--company", "globex", stdin=PASSWORD + "\n")
        globex.login("admin@globex.example")
        self.assertEqual(globex.call("GET", "/api/v1/companies/acme/logins")[0], 404)
        self.assertEqual(globex.call("DELETE", "/api/v1/companies/globex/logins/carol@acme.example")[0], 404)
        # One's own password: the current one is asked, the new one follows the rule, and
        # every session ends.
        change = lambda who, current, new: who.call("POST", "/api/v1/me/password",
                                                   {"current_password": current, "new_password": new})
        status, body, _ = change(second, "wrong password", "third horse battery")
        self.assertEqual((status, body["error"]["field"]), (400, "current_password"))
        status, body, _ = change(second, "second horse battery", "short")
        self.assertEqual((status, body["error"]["field"]), (400, "new_password"))
        self.assertEqual(change(second, "second horse battery", "third horse battery")[0], 200)
        self.assertEqual(second.call("GET", "/api/v1/me")[0], 401)
        self.assertEqual(second.login("second@acme.example", "third horse battery")[0], 200)
        # Removal: not one's own; the removed login's sessions end with it.
        self.assertEqual(adm.call("DELETE", "/api/v1/companies/acme/logins/admin%40acme.example")[0], 409)
        self.assertEqual(adm.call("DELETE", "/api/v1/companies/acme/logins/carol%40acme.example")[0], 200)
        self.assertEqual(carol.call("GET", "/api/v1/me")[0], 401)
        self.assertEqual(second.call("DELETE", "/api/v1/companies/acme/logins/carol@acme.example")[0], 404)
        self.assertEqual(second.call("DELETE", "/api/v1/companies/acme/logins/second@acme.example")[0], 409)
        self.assertNotIn("carol@acme.example", cli(self.db, "login", "list"))
        actions = [(e["action"], e["object"]) for e in adm.call(
            "GET", "/api/v1/companies/acme/audit?action=login.remove")[1]["items"]]
        self.assertIn(("login.remove", "carol@acme.example"), actions)
        cli(self.db, "login", "remove", "second@acme.example")
        self.assertEqual(second.call("GET", "/api/v1/me")[0], 401)

    def test_a_plus_in_a_path_is_a_plus(self):
        """RFC 3986: '+' means a space only in a query's form encoding; a plus-addressed alias
        named in a path is found as it is, and %-escapes are decoded once, by the router."""
        adm = self.client("admin@acme.example")
        alice = self.ids["alice@acme.example"]
        for spelled in ["alice+news@acme.example", "alice%2Bnews%40acme.example"]:
            self.assertEqual(adm.call("POST", f"/api/v1/users/{alice}/aliases",
                                      {"address": "alice+news@acme.example"})[0], 201)
            status, body, _ = adm.call("DELETE", f"/api/v1/users/{alice}/aliases/{spelled}")
            self.assertEqual(status, 200, (spelled, body))

    def test_wrong_passwords_and_accounts_that_may_not_log_in(self):
        c = Client(self.port)
        status, body, _ = c.login("admin@acme.example", "wrong password")
        self.assertEqual(status, 401)
        self.assertEqual(body["error"]["code"], "unauthenticated")
        self.assertEqual(c.login("nobody@acme.example")[0], 401)
        # A silent user cannot log in even with a login row (made here behind the CLI's back).
        cli(self.db, "user", "update", "alice@acme.example", "--role", "silent_user")
        try:
            self.assertEqual(Client(self.port).login("alice@acme.example")[0], 401)
        finally:
            cli(self.db, "user", "update", "alice@acme.example", "--role", "end_user")
        with self.assertRaises(RuntimeError):  # and the CLI refuses to make one
            cli(self.db, "login", "add", "bob@acme.example", "--role", "end_user",
                stdin=PASSWORD + "\n")

    def test_operators_see_every_company_admins_only_theirs(self):
        ops = self.client("ops@mailroster.example")
        names = [c["name"] for c in ops.call("GET", "/api/v1/companies")[1]["items"]]
        self.assertLessEqual({"acme", "globex"}, set(names))
        adm = self.client("admin@acme.example")
        names = [c["name"] for c in adm.call("GET", "/api/v1/companies")[1]["items"]]
        self.assertEqual(names, ["acme"])
        status, body, _ = adm.call("GET", "/api/v1/companies/acme/users?search=alice")
        self.assertEqual(status, 200)
        self.assertEqual([u["address"] for u in body["items"]], ["alice@acme.example"])

    def test_operators_see_the_serve_processes(self):
        ops = self.client("ops@mailroster.example")
        status, body, _ = ops.call("GET", "/api/v1/nodes")
        self.assertEqual(status, 200)
        this = [n for n in body["items"] if n["alive"]]
        self.assertEqual(len(this), 1, body)  # this suite's serve
        self.assertIn("admin HTTP 127.0.0.1:%d" % self.port, this[0]["serving"])
        self.assertTrue(this[0]["scheduler"])
        adm = self.client("admin@acme.example")
        status, body, _ = adm.call("GET", "/api/v1/nodes")
        self.assertEqual((status, body["error"]["code"]), (403, "forbidden"))

    def test_another_companys_objects_are_404_never_their_data(self):
        adm = self.client("admin@acme.example")
        hank = self.ids["hank@globex.example"]
        for method, path in [("GET", "/api/v1/companies/globex"),
                             ("GET", "/api/v1/companies/globex/users"),
                             ("GET", "/api/v1/companies/globex/discovered"),
                             ("GET", "/api/v1/companies/globex/invalid"),
                             ("GET", "/api/v1/companies/globex/audit"),
                             ("GET", f"/api/v1/users/{hank}"),
                             ("PATCH", f"/api/v1/users/{hank}"),
                             ("DELETE", f"/api/v1/users/{hank}"),
                             ("POST", "/api/v1/companies/globex/users")]:
            status, body, _ = adm.call(method, path, {"first_name": "X"} if method == "PATCH" else
                                       ({"address": "x@globex.example"} if method == "POST" else None))
            self.assertEqual(status, 404, (method, path, body))
            self.assertNotIn("hank", json.dumps(body))
        status, body, _ = adm.call("POST", "/api/v1/companies/acme/users",
                                   {"address": "x@globex.example"})
        self.assertEqual(status, 400)  # not a domain of acme
        self.assertEqual(body["error"]["field"], "address")
        self.assertTrue(self.client("ops@mailroster.example")
                        .call("GET", f"/api/v1/users/{hank}")[0] == 200)

    def test_an_end_user_sees_only_its_own_account(self):
        alice = self.client("alice@acme.example")
        me = alice.call("GET", "/api/v1/me")[1]
        self.assertEqual(me["role"], "end_user")
        status, body, _ = alice.call("GET", f"/api/v1/users/{self.ids['alice@acme.example']}")
        self.assertEqual(status, 200)
        self.assertIn("aliases", body)
        self.assertEqual(alice.call("GET", f"/api/v1/users/{self.ids['bob@acme.example']}")[0], 404)
        self.assertEqual(alice.call("GET", "/api/v1/companies")[0], 403)
        self.assertEqual(alice.call("GET", "/api/v1/companies/acme/users")[0], 404)
        # Every route on a company is for its administrators: to an end user of that very
        # company, each is as absent as for a stranger (404), whatever its method.
        spec = self.client("admin@acme.example").call("GET", "/api/v1/openapi.json")[1]
        routes = [(method.upper(), path) for path, ops in spec["paths"].items()
                  if path.startswith("/api/v1/companies/{company}") for method in ops]
        self.assertGreater(len(routes), 30)
        for method, path in routes:
            concrete = re.sub(r"\{[a-z_]+\}", lambda m: {"{company}": "acme", "{kind}": "ldap"}.get(
                m.group(0), "x"), path)
            status = alice.call(method, concrete, {} if method != "GET" else None)[0]
            self.assertEqual(status, 404, f"{method} {concrete}")
        status, body, _ = alice.call("PATCH", f"/api/v1/users/{self.ids['alice@acme.example']}",
                                     {"role": "silent_user"})
        self.assertEqual(status, 400)  # an end user may change its names only
        self.assertEqual(body["error"]["field"], "role")
        status, body, _ = alice.call("PATCH", f"/api/v1/users/{self.ids['alice@acme.example']}",
                                     {"surname": "Liddell"})
        self.assertEqual((status, body["surname"]), (200, "Liddell"))

    def test_changes_need_the_csrf_token(self):
        adm = self.client("admin@acme.example")
        status, body, _ = adm.call("POST", "/api/v1/companies/acme/users",
                                   {"address": "carol@acme.example"}, csrf=False)
        self.assertEqual((status, body["error"]["code"]), (403, "csrf"))
        status, body, _ = adm.call("POST", "/api/v1/companies/acme/users",
                                   {"address": "carol@acme.example", "first_name": "Carol"})
        self.assertEqual(status, 201, body)
        self.assertEqual(body["first_name"], "Carol")
        status, body, _ = adm.call("DELETE", f"/api/v1/users/{body['id']}")
        self.assertEqual(status, 200)

    def test_bad_bodies_are_400_with_the_field_and_change_nothing(self):
        adm = self.client("admin@acme.example")
        before = adm.call("GET", "/api/v1/companies/acme/users")[1]["items"]
        for raw, code, field in [("{not json", "invalid_argument", None),
                                 ("[1]", "invalid_argument", None),
                                 ('{"address": 7}', "invalid_argument", "address"),
                                 ('{"address": "d@acme.example", "colour": "x"}',
                                  "invalid_argument", "colour"),
                                 ('{"first_name": "x"}', "invalid_argument", "address"),
                                 ('{"address": "not an address"}', "invalid_argument", "address"),
                                 ('{"address": "d@acme.example", "role": "king"}',
                                  "invalid_argument", "role")]:
            status, body, _ = adm.call("POST", "/api/v1/companies/acme/users", raw=raw)
            self.assertEqual(status, 400, raw)
            self.assertEqual(body["error"]["code"], code)
            if field:
                self.assertEqual(body["error"].get("field"), field, raw)
        # Over the body limit (1 MiB): 413 as soon as the header says so.
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"POST /api/v1/companies/acme/users HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 2097152\r\n"
                      b"Cookie: " + adm.cookie.encode() + b"\r\nX-CSRF-Token: " +
                      adm.csrf.encode() + b"\r\n\r\n{\"address\": \"big@acme.example\"")
            self.assertIn(b" 413 ", s.recv(4096))
        self.assertEqual(adm.call("GET", "/api/v1/users/abc")[0], 404)
        self.assertEqual(adm.call("GET", "/api/v1/companies/acme/users?limit=0")[0], 400)
        self.assertEqual(adm.call("GET", "/api/v1/companies/acme/users")[1]["items"], before)

    def test_pagination(self):
        ops = self.client("ops@mailroster.example")
        audit = ops.call("GET", "/api/v1/companies/acme/audit?limit=2")[1]
        self.assertEqual(len(audit["items"]), 2)
        self.assertGreater(audit["total"], 2)
        self.assertEqual(audit["next_offset"], 2)
        whole = ops.call("GET", "/api/v1/companies/acme/audit?limit=1000")[1]
        self.assertEqual(whole["total"], audit["total"])
        ids = [e["id"] for e in whole["items"]]
        self.assertEqual(ids, sorted(ids, reverse=True))
        second = ops.call("GET", "/api/v1/companies/acme/audit?limit=2&offset=2")[1]
        self.assertEqual([e["id"] for e in second["items"]], ids[2:4])
        past = ops.call("GET", f"/api/v1/companies/acme/audit?offset={len(ids)}")[1]
        self.assertEqual((past["items"], past["total"]), ([], len(ids)))
        self.assertNotIn("next_offset", past)
        # What happened to one address: its events only, found in any case; and by action.
        target = next(e["object"] for e in whole["items"] if "@" in e["object"])
        about = ops.call("GET", "/api/v1/companies/acme/audit?object=" +
                         urllib.parse.quote(target.upper()))[1]
        self.assertEqual([e["id"] for e in about["items"]],
                         [e["id"] for e in whole["items"] if e["object"].lower() == target.lower()])
        self.assertEqual(about["total"], len(about["items"]))
        action = whole["items"][0]["action"]
        by_action = ops.call("GET", "/api/v1/companies/acme/audit?limit=1000&action=" + action)[1]
        self.assertEqual(by_action["total"], sum(e["action"] == action for e in whole["items"]))
        # The actions the filter takes: every one the trail holds is among them; another is a
        # 400 naming them, not an empty list.
        actions = ops.call("GET", "/api/v1/audit-actions")[1]["items"]
        self.assertLessEqual({e["action"] for e in whole["items"]}, set(actions))
        self.assertIn("company.remove", actions)
        self.assertEqual(self.client("alice@acme.example").call("GET", "/api/v1/audit-actions")[0], 403)
        status, body, _ = ops.call("GET", "/api/v1/companies/acme/audit?action=user.delete")
        self.assertEqual((status, body["error"]["field"]), (400, "action"), body)
        self.assertIn("unknown action 'user.delete' (one of user.add,", body["error"]["message"])
        self.assertEqual(ops.call("GET", "/api/v1/companies/acme/invalid?limit=x")[0], 400)
        first = ops.call("GET", "/api/v1/companies/acme/users?limit=1")[1]
        self.assertEqual(len(first["items"]), 1)
        self.assertEqual(first["next_offset"], 1)
        everyone = json.loads(cli(self.db, "user", "list", "--company", "acme", "--json"))
        self.assertEqual(first["company_users"], len(everyone))  # all, whatever the page
        self.assertNotIn("matching", first)  # no search, no role: every user matches
        # With a search or a role: how many match, whatever the page.
        role = everyone[0]["role"]
        same_role = ops.call("GET", "/api/v1/companies/acme/users?limit=1&offset=1&role=" + role)[1]
        self.assertEqual(same_role["matching"], sum(u["role"] == role for u in everyone))
        self.assertEqual(same_role["company_users"], len(everyone))
        # By source; an unknown one is a 400 naming it.
        source = everyone[0]["source"]
        same_source = ops.call("GET", "/api/v1/companies/acme/users?source=" + source)[1]
        self.assertEqual(same_source["matching"], sum(u["source"] == source for u in everyone))
        self.assertTrue(all(u["source"] == source for u in same_source["items"]))
        status, body, _ = ops.call("GET", "/api/v1/companies/acme/users?source=fax")
        self.assertEqual((status, body["error"]["field"]), (400, "source"))
        term = everyone[0]["address"]
        found = ops.call("GET", "/api/v1/companies/acme/users?search=" +
                         urllib.parse.quote(term.upper()))[1]
        expected = sum(term.lower() in ("%s %s %s" % (u["address"], u["first_name"], u["surname"])).lower()
                       for u in everyone)
        self.assertGreaterEqual(expected, 1)
        self.assertEqual((found["matching"], len(found["items"])), (expected, expected))
        second = ops.call("GET", "/api/v1/companies/acme/users?limit=1&offset=1")[1]
        self.assertNotEqual(first["items"][0]["address"], second["items"][0]["address"])
        # When each last had clean mail (none here: no mail went through), and who has had
        # none for days: nobody yet, all being new. Days are 1 to 3650, digits only.
        self.assertIn("last_mail_at", first["items"][0])
        self.assertIsNone(first["items"][0]["last_mail_at"])
        quiet = ops.call("GET", "/api/v1/companies/acme/users?no_mail_days=30")[1]
        self.assertEqual((quiet["matching"], quiet["items"]), (0, []))
        for bad in ("0", "3651", "x", "-1", "7d", ""):
            status, body, _ = ops.call("GET", "/api/v1/companies/acme/users?no_mail_days=" + bad)
            self.assertEqual((status, body["error"]["field"]), (400, "no_mail_days"), bad)
        status, body, _ = ops.call("GET", "/api/v1/companies/acme/users?offset=1x")
        self.assertEqual((status, body["error"]["field"]), (400, "offset"))

    def test_the_openapi_document_names_every_route(self):
        status, doc, _ = Client(self.port).call("GET", "/api/v1/openapi.json")
        self.assertEqual(status, 200)
        self.assertEqual(doc["openapi"], "3.0.3")
        for path in ["/api/v1/login", "/api/v1/companies/{company}/users", "/api/v1/users/{id}"]:
            self.assertIn(path, doc["paths"])
        self.assertIn("patch", doc["paths"]["/api/v1/users/{id}"])
        # Each body the document describes is the one the server checks: a field it does not
        # name, a field of another type, a required one left out: 400 naming that field, before
        # anything else is looked at (the path names nothing that exists).
        ops = self.client("ops@mailroster.example")
        wrong = {"string": 7, "boolean": "yes", "array": {}, "object": [], "integer": "x"}
        checked = 0
        for path, methods in doc["paths"].items():
            concrete = re.sub(r"\{[a-z]+\}", "nothing-here", path)
            for method, op in methods.items():
                schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
                if not schema or "properties" not in schema:
                    continue
                self.assertFalse(schema["additionalProperties"], path)
                checked += 1
                cases = [({"no_such_field": 1}, "no_such_field")]
                cases += [({name: wrong[p["type"]]}, name) for name, p in schema["properties"].items()]
                if schema.get("required"):
                    cases.append(({}, None))
                for body, field in cases:
                    status, answer, _ = ops.call(method.upper(), concrete, body)
                    self.assertEqual(status, 400, (method, path, body, answer))
                    self.assertEqual(answer["error"]["field"], field or answer["error"]["field"])
                    if field is None:
                        self.assertIn(answer["error"]["field"], schema["required"])
        self.assertGreaterEqual(checked, 15)
        # A method the path does not take: 405 saying which it does (RFC 9110 15.5.6).
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("PUT", "/api/v1/companies", body="{}")
        r = conn.getresponse()
        body = json.loads(r.read())
        conn.close()
        self.assertEqual((r.status, r.getheader("Allow")), (405, "GET, HEAD, POST"), body)
        self.assertEqual(body["error"]["code"], "method_not_allowed")
        # HEAD: GET's status and headers, no body (a balancer's health check).
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/healthz")
        got = conn.getresponse()
        got_body = got.read()
        conn.request("HEAD", "/healthz")
        head = conn.getresponse()
        self.assertEqual((head.status, head.read()), (200, b""))
        self.assertEqual(head.getheader("Content-Length"), str(len(got_body)))
        conn.request("GET", "/healthz")  # the connection goes on after a HEAD
        self.assertEqual(conn.getresponse().read(), got_body)
        conn.close()
        # Query parameters: the ones documented are read; any other (a typo: limt) is a 400
        # naming it, not silently ignored.
        users = {p["name"] for p in doc["paths"]["/api/v1/companies/{company}/users"]["get"]["parameters"]
                 if p["in"] == "query"}
        self.assertEqual(users, {"limit", "offset", "search", "role", "source", "no_mail_days"})
        status, answer, _ = ops.call("GET", "/api/v1/companies/acme/users?limt=5")
        self.assertEqual((status, answer["error"]["field"]), (400, "limt"), answer)
        self.assertEqual(ops.call("GET", "/api/v1/companies/acme/users?limit=5&search=a")[0], 200)
        status, answer, _ = ops.call("GET", "/api/v1/companies?limit=5")
        self.assertEqual((status, answer["error"]["field"]), (400, "limit"), answer)
        for path, methods in doc["paths"].items():
            for method, op in methods.items():
                names = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
                if not names:
                    continue
                concrete = re.sub(r"\{[a-z]+\}", "nothing-here", path)
                status, answer, _ = ops.call(method.upper(), concrete + "?" + names[0] + "=1&not_read=1")
                self.assertEqual((status, answer["error"]["field"]), (400, "not_read"), (path, answer))

    def discover(self, address, company="acme"):
        """Puts an address on the discovered list, as the mail flow would."""
        now = int(time.time())
        databases.execute(
            self.db,
            "INSERT INTO discovered_addresses(company_id, domain_id, address, address_key, "
            f"first_seen, discovered_at) SELECT c.id, d.id, '{address}', '{address.lower()}', "
            f"{now}, {now} FROM companies c JOIN domains d ON d.company_id = c.id "
            f"WHERE c.name = '{company}' AND d.name = '{address.split('@')[1]}'")

    def test_the_select_menu_on_discovered_addresses(self):
        for a in ("new1@acme.example", "room@acme.example", "spam@acme.example",
                  "al.ias@acme.example", "keep@acme.example"):
            self.discover(a)
        adm = self.client("admin@acme.example")
        items = {d["address"]: d for d in
                 adm.call("GET", "/api/v1/companies/acme/discovered")[1]["items"]}
        listed = set(items)
        self.assertIn("new1@acme.example", listed)
        # When it expires unless handled: the notification weeks after it was discovered.
        weeks = adm.call("GET", "/api/v1/companies/acme/discovery-settings")[1]["notification_weeks"]
        new1 = items["new1@acme.example"]
        at = lambda t: datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
        self.assertEqual(at(new1["expires_at"]) - at(new1["discovered_at"]), datetime.timedelta(weeks=weeks))
        self.assertIsNone(new1["suggested_alias_target"])
        # Found by a part of the address, any case, and counted so.
        found = adm.call("GET", "/api/v1/companies/acme/discovered?search=NEW1@")[1]
        self.assertEqual(([d["address"] for d in found["items"]], found["total"]),
                         (["new1@acme.example"], 1))
        # One bad action: none is applied.
        status, body, _ = adm.call("POST", "/api/v1/companies/acme/discovered/actions", {
            "actions": [{"action": "create_user", "address": "new1@acme.example"},
                        {"action": "add_alias", "address": "keep@acme.example",
                         "alias_of": "nobody@acme.example"}]})
        self.assertIn(status, (400, 404, 409), body)
        self.assertIn("new1@acme.example", {d["address"] for d in adm.call(
            "GET", "/api/v1/companies/acme/discovered")[1]["items"]})
        status, body, _ = adm.call("POST", "/api/v1/companies/acme/discovered/actions", {
            "actions": [
                {"action": "create_user", "address": "new1@acme.example",
                 "first_name": "New", "surname": "One", "role": "end_user"},
                {"action": "create_functional", "address": "room@acme.example"},
                {"action": "mark_invalid", "address": "spam@acme.example"},
                {"action": "add_alias", "address": "al.ias@acme.example",
                 "alias_of": "alice@acme.example"}]})
        self.assertEqual(status, 200, body)
        users = {u["address"]: u for u in
                 adm.call("GET", "/api/v1/companies/acme/users?limit=1000")[1]["items"]}
        self.assertEqual(users["new1@acme.example"]["first_name"], "New")
        self.assertEqual(users["room@acme.example"]["role"], "functional")
        invalid = [i["address"] for i in
                   adm.call("GET", "/api/v1/companies/acme/invalid")[1]["items"]]
        self.assertIn("spam@acme.example", invalid)
        alice = adm.call("GET", f"/api/v1/users/{self.ids['alice@acme.example']}")[1]
        self.assertIn("al.ias@acme.example", [a["address"] for a in alice["aliases"]])
        status, body, _ = adm.call("POST", "/api/v1/companies/acme/discovered/actions",
                                   {"actions": [{"action": "explode", "address": "keep@acme.example"}]})
        self.assertEqual((status, body["error"]["field"]), (400, "action"))
        # Another company's discovered list and actions are out of reach.
        self.assertEqual(adm.call("POST", "/api/v1/companies/globex/discovered/actions",
                                  {"actions": []})[0], 404)

    def test_several_users_at_once_all_or_nothing(self):
        for address in ("bulk1@acme.example", "bulk2@acme.example", "bulk3@acme.example"):
            cli(self.db, "user", "add", address, "--role", "silent_user")
        cli(self.db, "alias", "add", "b3@acme.example", "--user", "bulk3@acme.example")
        adm = self.client("admin@acme.example")
        path = "/api/v1/companies/acme/users/actions"
        role = lambda a: json.loads(cli(self.db, "user", "show", a, "--json"))["role"]
        try:
            # One bad entry among good ones: a 400 naming its field, and nothing changed.
            for bad, field in [({"action": "remove", "address": "hank@globex.example"}, "address"),
                               ({"action": "remove", "address": "nobody@acme.example"}, "address"),
                               ({"action": "set_role", "address": "bulk2@acme.example", "role": "boss"}, "role"),
                               ({"action": "remove", "address": "BULK1@acme.example"}, "address"),
                               ({"action": "promote", "address": "bulk2@acme.example"}, "action"),
                               ({"action": "remove"}, "address"),
                               ("bulk2@acme.example", "actions")]:
                status, body, _ = adm.call("POST", path, {"actions": [
                    {"action": "set_role", "address": "bulk1@acme.example", "role": "end_user"}, bad]})
                self.assertEqual((status, body["error"]["field"]), (400, field), body)
                self.assertEqual(role("bulk1@acme.example"), "silent_user")
            # Another company's user is told as an unknown one is: nothing about that company.
            said = lambda a: adm.call("POST", path, {"actions": [
                {"action": "remove", "address": a}]})[1]["error"]["message"]
            self.assertEqual(said("hank@globex.example"), "'hank@globex.example' is not a user of acme")
            self.assertEqual(said("nobody@globex.example"), "'nobody@globex.example' is not a user of acme")
            # An alias given for its user: the error names the user; not another company's.
            self.assertEqual(said("B3@acme.example"),
                             "'B3@acme.example' is not a user of acme (it is an alias of bulk3@acme.example)")
            cli(self.db, "alias", "add", "h.bulk@globex.example", "--user", "hank@globex.example")
            self.assertEqual(said("h.bulk@globex.example"), "'h.bulk@globex.example' is not a user of acme")
            cli(self.db, "alias", "remove", "h.bulk@globex.example")
            status, body, _ = adm.call("POST", path, {"actions": [
                {"action": "set_role", "address": "bulk1@acme.example", "role": "end_user"},
                {"action": "set_role", "address": "Bulk2@acme.example", "role": "functional"},
                {"action": "remove", "address": "bulk3@acme.example"}]})
            self.assertEqual((status, body), (200, {"changed": 3}))
            self.assertEqual((role("bulk1@acme.example"), role("bulk2@acme.example")),
                             ("end_user", "functional"))
            left = cli(self.db, "user", "list", "--company", "acme")
            self.assertNotIn("bulk3@", left)
            self.assertNotIn("b3@acme.example", cli(self.db, "alias", "list", "--company", "acme"))
            # Each change audited, by the administrator who made it.
            events = json.loads(cli(self.db, "audit", "list", "--company", "acme", "--object",
                                    "bulk1@acme.example", "--json"))
            self.assertEqual((events[0]["action"], events[0]["actor"], events[0]["change"]),
                             ("user.update", "admin:admin@acme.example", "role: silent user -> end user"))
            # Removals of over 10 % of acme's users at once stop at the deletion guard; only a
            # forced request goes past it.
            total = len(json.loads(cli(self.db, "user", "list", "--company", "acme", "--json")))
            many = [f"guard{i:03}@acme.example" for i in range(total // 9 + 2)]
            with tempfile.NamedTemporaryFile("w", suffix=".csv") as f:
                f.write("email\n" + "".join(a + "\n" for a in many))
                f.flush()
                cli(self.db, "import", "csv", f.name, "--company", "acme")
            going = [{"action": "remove", "address": a} for a in many]
            status, body, _ = adm.call("POST", path, {"actions": going})
            self.assertEqual((status, body["error"]["field"]), (409, "force"), body)
            self.assertEqual(body["error"]["message"],
                             f"deletion guard: this would delete {len(many)} of {total + len(many)} "
                             "users, more than 10 %; nothing was changed (force to remove them)")
            self.assertIn("guard000@", cli(self.db, "user", "list", "--company", "acme"))
            status, body, _ = adm.call("POST", path, {"actions": going, "force": "yes"})
            self.assertEqual((status, body["error"]["field"]), (400, "force"), body)
            self.assertEqual(adm.call("POST", path, {"actions": going, "force": True})[:2],
                             (200, {"changed": len(many)}))
            self.assertNotIn("guard", cli(self.db, "user", "list", "--company", "acme"))
            # An end user sees no company's lists (404, as for every company route); another
            # company's users are out of reach.
            self.assertEqual(self.client("alice@acme.example").call("POST", path, {"actions": []})[0], 404)
            self.assertEqual(adm.call("POST", "/api/v1/companies/globex/users/actions",
                                      {"actions": []})[0], 404)
        finally:
            for address in ("bulk1@acme.example", "bulk2@acme.example", "bulk3@acme.example"):
                subprocess.run([BINARY, "--db", self.db, "user", "remove", address], capture_output=True)

    def test_invalid_list_aliases_and_discovery_settings(self):
        adm = self.client("admin@acme.example")
        status, body, _ = adm.call("POST", "/api/v1/companies/acme/invalid",
                                   {"address": "ghost@acme.example", "reason": "left"})
        self.assertEqual(status, 201, body)
        # Found by a part of the address or the reason, any case, and counted so.
        for search in ("GHOST", "LEFT"):
            found = adm.call("GET", "/api/v1/companies/acme/invalid?search=" + search)[1]
            self.assertEqual(([i["address"] for i in found["items"]], found["total"]),
                             (["ghost@acme.example"], 1), search)
        self.assertEqual(adm.call("GET", "/api/v1/companies/acme/invalid?search=nowhere")[1]["total"], 0)
        status, body, _ = adm.call("POST", "/api/v1/companies/acme/invalid/ghost@acme.example/user",
                                   {"first_name": "Ghost"})
        self.assertEqual((status, body["first_name"]), (201, "Ghost"))
        self.assertEqual(adm.call("POST", "/api/v1/companies/acme/invalid",
                                  {"address": "x@globex.example"})[0], 400)
        uid = self.ids["alice@acme.example"]
        self.assertEqual(adm.call("POST", f"/api/v1/users/{uid}/aliases",
                                  {"address": "a.l@acme.example"})[0], 201)
        self.assertEqual(adm.call("POST", f"/api/v1/users/{uid}/aliases",
                                  {"address": "a.l@acme.example"})[0], 409)  # taken
        self.assertEqual(adm.call("DELETE", f"/api/v1/users/{uid}/aliases/a.l%40acme.example")[0],
                         200)
        status, body, _ = adm.call("PATCH", "/api/v1/companies/acme/discovery-settings",
                                   {"enabled": True, "inbound_threshold": 5})
        self.assertEqual((status, body["enabled"], body["inbound_threshold"]), (200, True, 5))
        status, body, _ = adm.call("PATCH", "/api/v1/companies/acme/discovery-settings",
                                   {"notification_weeks": 99})
        self.assertEqual((status, body["error"]["field"]), (400, "notification_weeks"))
        status, body, _ = adm.call("PATCH", "/api/v1/companies/acme/discovery-settings",
                                   {"colour": "blue"})
        self.assertEqual(status, 400)
        self.assertEqual(adm.call("GET", "/api/v1/companies/acme/discovery-settings")[1]
                         ["inbound_threshold"], 5)

    def test_weekly_report_preview(self):
        """The next Thursday's report, as it would be sent: this week's new users listed."""
        status, body, _ = self.client("admin@acme.example").call(
            "GET", "/api/v1/companies/acme/report")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["company"], "acme")
        self.assertEqual(datetime.date.fromisoformat(body["week"]).weekday(), 3)  # a Thursday
        self.assertIsInstance(body["to"], list)
        self.assertIn("alice@acme.example", body["text"])
        self.assertNotIn("hank@globex.example", body["text"])

    def test_company_administrators_flush_callout_answers_for_their_own_domains(self):
        """After a mailbox is made or removed at the company's server, its administrator makes
        the gateway ask again: for an address or a domain of the company, never another's, nor
        everything (operators do that)."""
        adm = self.client("admin@acme.example")
        status, body, _ = adm.call("POST", "/api/v1/verify/flush", {"domain": "ACME.example"})
        self.assertEqual((status, body.get("removed")), (200, 0), body)
        self.assertEqual(adm.call("POST", "/api/v1/verify/flush", {"address": "new@acme.example"})[0], 200)
        for other in ({"domain": "globex.example"}, {"address": "hank@globex.example"},
                      {"domain": "nowhere.example"}, {}):
            status, body, _ = adm.call("POST", "/api/v1/verify/flush", other)
            self.assertEqual((status, body["error"]["code"]), (403, "forbidden"), other)
        status, body, _ = adm.call("POST", "/api/v1/verify/flush", {"domain": "bad domain"})
        self.assertEqual(status, 400, body)
        self.assertEqual(self.client("alice@acme.example").call(
            "POST", "/api/v1/verify/flush", {"domain": "acme.example"})[0], 403)  # an end user
        self.assertEqual(self.client("ops@mailroster.example").call("POST", "/api/v1/verify/flush", {})[0], 200)
        self.assertEqual(Client(self.port).call("POST", "/api/v1/verify/flush", {})[0], 401)
        # Which mail servers fail now: operators only.
        self.assertEqual(adm.call("GET", "/api/v1/relay/failing")[0], 403)
        status, body, _ = self.client("ops@mailroster.example").call("GET", "/api/v1/relay/failing")
        self.assertEqual(status, 200, body)
        self.assertIsInstance(body["items"], list)

    def test_only_operators_add_companies_and_domains(self):
        adm = self.client("admin@acme.example")
        self.assertEqual(adm.call("POST", "/api/v1/companies", {"name": "initech"})[0], 403)
        self.assertEqual(adm.call("POST", "/api/v1/companies/acme/domains",
                                  {"name": "acme.test", "destination": "127.0.0.1:25"})[0], 403)
        ops = self.client("ops@mailroster.example")
        self.assertEqual(ops.call("POST", "/api/v1/companies", {"name": "initech"})[0], 201)
        status, body, _ = ops.call("POST", "/api/v1/companies", {"name": "bad name!"})
        self.assertEqual((status, body["error"]["field"]), (400, "name"))
        self.assertEqual(ops.call("POST", "/api/v1/companies/initech/domains",
                                  {"name": "initech.example", "destination": "127.0.0.1:25"})[0],
                         201)
        self.assertEqual(ops.call("POST", "/api/v1/companies/initech/domains",
                                  {"name": "acme.example", "destination": "127.0.0.1:25"})[0],
                         409)  # another company's domain
        status, body, _ = ops.call("PATCH", "/api/v1/companies/initech/domains/initech.example",
                                   {"destination": "127.0.0.1:2526"})
        self.assertEqual((status, body["destination"]), (200, "127.0.0.1:2526"), body)
        # Several servers, tried in order; one listed twice is a 400 naming the field.
        status, body, _ = ops.call("PATCH", "/api/v1/companies/initech/domains/initech.example",
                                   {"destination": "mx1.initech.example,[::1]:2526"})
        self.assertEqual((status, body["destination"]), (200, "mx1.initech.example:25, [::1]:2526"), body)
        status, body, _ = ops.call("PATCH", "/api/v1/companies/initech/domains/initech.example",
                                   {"destination": "mx1.initech.example, MX1.initech.example:25"})
        self.assertEqual((status, body["error"]["field"]), (400, "destination"), body)
        self.assertIn("listed twice", body["error"]["message"])
        self.assertEqual(adm.call("PATCH", "/api/v1/companies/initech/domains/initech.example",
                                  {"destination": "127.0.0.1:1"})[0], 404)
        self.assertEqual(ops.call("PATCH", "/api/v1/companies/initech/domains/acme.example",
                                  {"destination": "127.0.0.1:1"})[0], 404)  # not initech's
        status, body, _ = adm.call("PATCH", "/api/v1/companies/acme",
                                   {"tech_contact": "tech@acme.example"})
        self.assertEqual((status, body["tech_contact"]), (200, "tech@acme.example"), body)
        self.assertEqual(adm.call("PATCH", "/api/v1/companies/acme",
                                  {"tech_contact": "not mail"})[0], 400)
        # Relay networks (who may send the company's outbound mail): operators only.
        status, body, _ = adm.call("PATCH", "/api/v1/companies/acme",
                                   {"relay_networks": ["0.0.0.0/0"]})
        self.assertEqual((status, body["error"]["field"]), (403, "relay_networks"))
        status, body, _ = ops.call("PATCH", "/api/v1/companies/acme",
                                   {"relay_networks": ["192.0.2.0/24", "2001:db8::/32"]})
        self.assertEqual((status, body["relay_networks"]), (200, ["192.0.2.0/24", "2001:db8::/32"]), body)
        for bad in [["192.0.2.0/33"], ["mail.acme.example"], [24], ["0.0.0.0/0"]]:  # an open relay
            status, body, _ = ops.call("PATCH", "/api/v1/companies/acme", {"relay_networks": bad})
            self.assertEqual((status, (body.get("error") or {}).get("field")), (400, "relay_networks"), (bad, body))
        self.assertEqual(ops.call("GET", "/api/v1/companies/acme")[1]["relay_networks"],
                         ["192.0.2.0/24", "2001:db8::/32"])  # a refused change changed nothing
        self.assertIn("192.0.2.0/24", cli(self.db, "company", "show", "acme"))
        self.assertEqual(ops.call("PATCH", "/api/v1/companies/acme", {"relay_networks": []})[1]
                         ["relay_networks"], [])
        self.assertEqual(adm.call("DELETE", "/api/v1/companies/acme")[0], 403)
        self.assertEqual(ops.call("DELETE", "/api/v1/companies/initech")[0], 409)  # has a domain
        self.assertEqual(ops.call("DELETE", "/api/v1/companies/initech/domains/initech.example")[0],
                         200)
        self.assertEqual(ops.call("DELETE", "/api/v1/companies/initech")[0], 200)

    def test_smtp_answers_while_an_import_writes(self):
        """An import holds the store's write transaction for seconds: the API runs it on a
        worker thread and the SMTP path reads through its own connection, so a RCPT is
        answered meanwhile instead of after it."""
        cli(self.db, "company", "add", "bulk")
        cli(self.db, "domain", "add", "bulk.example", "--company", "bulk",
            "--destination", "127.0.0.1:25")
        smtp_port = int(re.search(r"inbound SMTP listening on 127\.0\.0\.1:(\d+)",
                                  open(self.log.name).read()).group(1))
        ops = self.client("ops@mailroster.example")
        rows = 200000
        csv = "email\n" + "".join(f"u{i}@bulk.example\n" for i in range(rows))
        status, plan, _ = ops.call("POST", "/api/v1/companies/bulk/imports", raw=csv,
                                   content_type="text/csv")
        self.assertEqual(status, 201)
        applied = {}

        def apply():
            applied["result"] = ops.call(
                "POST", f"/api/v1/companies/bulk/imports/{plan['plan_id']}/apply", {})

        writer = threading.Thread(target=apply)
        writer.start()
        time.sleep(0.3)  # the apply is under way (it takes seconds for this many rows)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
            s.ehlo("client.example")
            s.mail("someone@example.org")
            code, _ = s.rcpt("alice@acme.example")
            still_writing = writer.is_alive()
        writer.join(120)
        self.assertEqual(code, 250)
        self.assertTrue(still_writing, "the RCPT was answered only after the import")
        status, body, _ = applied["result"]
        self.assertEqual((status, body["created"]), (200, rows), body)

    def test_csv_import_preview_then_apply_exactly_that_plan(self):
        adm = self.client("admin@acme.example")
        csv = ("email,first_name,surname\r\n"
               "imp1@acme.example,Imp,One\r\n"
               "not an address,Bad,Row\r\n"
               "imp2@acme.example,Imp,Two\r\n")
        status, plan, _ = adm.call("POST", "/api/v1/companies/acme/imports", raw=csv,
                                   content_type="text/csv")
        self.assertEqual(status, 201, plan)
        self.assertEqual(plan["counts"]["create"], 2)
        self.assertEqual(plan["errors"][0]["line"], 3)
        path = f"/api/v1/companies/acme/imports/{plan['plan_id']}/apply"
        status, body, _ = adm.call("POST", path, {})
        self.assertEqual((status, body["error"]["field"]), (400, "skip_invalid"))
        self.assertEqual(self.client("ops@mailroster.example").call(
            "POST", f"/api/v1/companies/globex/imports/{plan['plan_id']}/apply",
            {"skip_invalid": True})[0], 404)  # another company's id
        status, body, _ = adm.call("POST", path, {"skip_invalid": True})
        self.assertEqual((status, body["created"]), (200, 2), body)
        self.assertEqual(adm.call("POST", path, {"skip_invalid": True})[0], 404)  # used up
        # The world changes between preview and apply: the plan fails whole, 409.
        status, plan, _ = adm.call("POST", "/api/v1/companies/acme/imports",
                                   raw="email\nimp3@acme.example\nimp4@acme.example\n",
                                   content_type="text/csv")
        adm.call("POST", "/api/v1/companies/acme/users", {"address": "imp4@acme.example"})
        status, body, _ = adm.call("POST", f"/api/v1/companies/acme/imports/{plan['plan_id']}/apply",
                                   {})
        self.assertEqual(status, 409, body)
        users = {u["address"] for u in
                 adm.call("GET", "/api/v1/companies/acme/users?limit=1000")[1]["items"]}
        self.assertNotIn("imp3@acme.example", users)
        status, body, _ = adm.call("POST", "/api/v1/companies/acme/imports", raw="nothing,here\n",
                                   content_type="text/csv")
        self.assertEqual((status, body["error"]["field"]), (400, "file"))
        # As a spreadsheet saves it where the comma is the decimal mark.
        status, plan, _ = adm.call("POST", "/api/v1/companies/acme/imports",
                                   raw="email;first_name\r\nsemi@acme.example;Semi, Colon\r\n",
                                   content_type="text/csv")
        self.assertEqual((status, plan["separator"], plan["counts"]["create"]), (201, ";", 1), plan)
        self.assertEqual(plan["creates"][0]["address"], "semi@acme.example")

    def test_users_export_as_a_csv_file_the_import_reads_back_unchanged(self):
        adm = self.client("admin@acme.example")
        adm.call("POST", "/api/v1/companies/acme/users",
                 {"address": "exp@acme.example", "first_name": "=1+2", "surname": "Comma, Quote\""})
        adm.call("POST", f"/api/v1/users/{self.ids['alice@acme.example']}/aliases",
                 {"address": "exp.alias@acme.example"})
        status, headers, data = adm.fetch("/api/v1/companies/acme/users.csv")
        self.assertEqual(status, 200, data)
        self.assertEqual(headers["content-type"], "text/csv; charset=utf-8")
        self.assertEqual(headers["content-disposition"],
                         "attachment; filename=\"acme-users.csv\"; filename*=UTF-8''acme-users.csv")
        self.assertTrue(data.startswith(b"\xef\xbb\xbfemail,first_name,surname,role,type,aliases\r\n"))
        text = data.decode("utf-8-sig")
        self.assertIn("exp@acme.example,'=1+2,\"Comma, Quote\"\"\",end_user,user,\r\n", text)
        self.assertRegex(text, r"\nalice@acme\.example,Alice,[^,\r]*,end_user,user,"
                               r"([^\r]*;)?exp\.alias@acme\.example[;\r]")
        self.assertIn("bob@acme.example,,,silent_user,user,\r\n", text)
        self.assertNotIn("globex", text)
        users = adm.call("GET", "/api/v1/companies/acme/users?limit=1000")[1]["items"]
        self.assertEqual(len(text.splitlines()), 1 + len(users))
        # The file, uploaded as it came, previews as no change at all.
        status, plan, _ = adm.call("POST", "/api/v1/companies/acme/imports", raw=data,
                                   content_type="text/csv")
        self.assertEqual(status, 201, plan)
        self.assertEqual((plan["counts"]["create"], plan["counts"]["update"], plan["errors"]),
                         (0, 0, []), plan)
        # Another company's file: 404 for acme's administrator and for an end user; the
        # operator gets it.
        self.assertEqual(adm.fetch("/api/v1/companies/globex/users.csv")[0], 404)
        self.assertEqual(self.client("alice@acme.example").fetch(
            "/api/v1/companies/acme/users.csv")[0], 404)
        status, _, data = self.client("ops@mailroster.example").fetch(
            "/api/v1/companies/globex/users.csv")
        self.assertEqual(status, 200)
        self.assertIn(b"hank@globex.example,", data)
        self.assertEqual(Client(self.port).fetch("/api/v1/companies/acme/users.csv")[0], 401)

    def test_csv_import_preview_pages_through_its_lists(self):
        """The preview answers with the counts and the first 100 of each list; the rest is paged
        from the plan kept on disk, in the company's name only."""
        adm = self.client("admin@acme.example")
        csv = "email,first_name\n" + "".join(f"page{i:03}@acme.example,P{i}\n" for i in range(250))
        csv += "".join(f"broken{i}\n" for i in range(130))  # lines 252..381
        status, plan, _ = adm.call("POST", "/api/v1/companies/acme/imports", raw=csv,
                                   content_type="text/csv")
        self.assertEqual(status, 201, plan)
        self.assertEqual((plan["counts"]["create"], plan["bad_rows"], plan["rows"]), (250, 130, 380))
        self.assertEqual((len(plan["creates"]), len(plan["errors"])), (100, 100))
        base = f"/api/v1/companies/acme/plans/{plan['plan_id']}"
        seen, offset = [], 0
        while offset is not None:
            status, page, _ = adm.call("GET", f"{base}/creates?limit=90&offset={offset}")
            self.assertEqual((status, page["total"]), (200, 250), page)
            seen += [i["address"] for i in page["items"]]
            offset = page.get("next_offset")
        self.assertEqual(seen[:100], [i["address"] for i in plan["creates"]])
        self.assertEqual(sorted(seen), [f"page{i:03}@acme.example" for i in range(250)])
        status, page, _ = adm.call("GET", f"{base}/errors?offset=100")
        self.assertEqual([e["line"] for e in page["items"]], list(range(352, 382)), page)
        self.assertEqual(adm.call("GET", f"{base}/skips")[1]["items"], [])
        self.assertEqual(adm.call("GET", f"{base}/everything")[0], 404)
        self.assertEqual(adm.call("GET", f"{base}/creates?limit=5000")[0], 400)
        status, page, _ = adm.call("GET", f"{base}/creates?offset=1000000")
        self.assertEqual((status, page["items"], page["total"]), (200, [], 250))
        self.assertNotIn("next_offset", page)
        self.assertEqual(adm.call("GET", f"{base}/creates?offset={2**64 - 1}")[0], 400)
        self.assertEqual(adm.call("GET", "/api/v1/companies/acme/users?offset=" +
                                  str(2**63 + 5))[0], 400)
        ops = self.client("ops@mailroster.example")
        self.assertEqual(ops.call("GET", base.replace("/acme/", "/globex/") + "/creates")[0], 404)
        self.assertIn(self.client("alice@acme.example").call("GET", base + "/creates")[0], (403, 404))
        apply = f"/api/v1/companies/acme/imports/{plan['plan_id']}/apply"
        status, body, _ = adm.call("POST", apply, {"skip_invalid": True})
        self.assertEqual((status, body["created"]), (200, 250), body)
        self.assertEqual(adm.call("GET", f"{base}/creates")[0], 404)  # applied: gone

    def test_a_company_keeps_its_ten_newest_plans(self):
        """Previews are kept on disk for an hour; a company's eleventh drops its oldest."""
        adm = self.client("admin@acme.example")
        ids = []
        for i in range(11):
            status, plan, _ = adm.call("POST", "/api/v1/companies/acme/imports",
                                       raw=f"email\nkept{i}@acme.example\n",
                                       content_type="text/csv")
            self.assertEqual(status, 201, plan)
            ids.append(plan["plan_id"])
        pages = [adm.call("GET", f"/api/v1/companies/acme/plans/{i}/creates")[0] for i in ids]
        self.assertEqual(pages, [404] + [200] * 10)
        ops = self.client("ops@mailroster.example")  # another company's previews do not count
        status, plan, _ = ops.call("POST", "/api/v1/companies/globex/imports",
                                   raw="email\nother@globex.example\n", content_type="text/csv")
        self.assertEqual(status, 201, plan)
        self.assertEqual(adm.call("GET", f"/api/v1/companies/acme/plans/{ids[1]}/creates")[0], 200)

    def test_csv_import_apply_refuses_a_plan_the_domains_changed_under(self):
        """A domain removed between preview and apply turns its rows bad: the file no longer
        plans as previewed, so nothing of it is applied."""
        ops = self.client("ops@mailroster.example")
        self.assertEqual(ops.call("POST", "/api/v1/companies/acme/domains",
                                  {"name": "acme-two.example", "destination": "127.0.0.1:25"})[0],
                         201)
        csv = "email\nkeep1@acme.example\ngone1@acme-two.example\n"
        status, plan, _ = ops.call("POST", "/api/v1/companies/acme/imports", raw=csv,
                                   content_type="text/csv")
        self.assertEqual((status, plan["counts"]["create"], plan["bad_rows"]), (201, 2, 0), plan)
        self.assertEqual(ops.call("DELETE", "/api/v1/companies/acme/domains/acme-two.example")[0],
                         200)
        status, body, _ = ops.call("POST", f"/api/v1/companies/acme/imports/{plan['plan_id']}/apply",
                                   {"skip_invalid": True})
        self.assertEqual(status, 409, body)
        self.assertIn("preview", body["error"]["message"])
        users = {u["address"] for u in
                 ops.call("GET", "/api/v1/companies/acme/users?limit=1000")[1]["items"]}
        self.assertNotIn("keep1@acme.example", users)

    def test_csv_import_apply_of_a_guarded_plan_needs_force(self):
        """A preview whose deletes the guard stops is refused at apply, at once and with nothing
        written, unless forced; forced, it deletes them."""
        ops = self.client("ops@mailroster.example")
        self.assertEqual(ops.call("POST", "/api/v1/companies", {"name": "guarded"})[0], 201)
        self.assertEqual(ops.call("POST", "/api/v1/companies/guarded/domains",
                                  {"name": "guarded.example", "destination": "127.0.0.1:25"})[0], 201)
        def preview(csv, delete_missing):
            status, plan, _ = ops.call(
                "POST", "/api/v1/companies/guarded/imports" +
                ("?delete_missing=true" if delete_missing else ""), raw=csv, content_type="text/csv")
            self.assertEqual(status, 201, plan)
            return plan
        first = preview("email\n" + "".join(f"g{i}@guarded.example\n" for i in range(20)), False)
        self.assertEqual(ops.call("POST", f"/api/v1/companies/guarded/imports/{first['plan_id']}/apply",
                                  {})[0], 200)
        plan = preview("email\ng0@guarded.example\n", True)
        self.assertEqual(plan["counts"]["delete"], 19)
        self.assertIn("would delete 19 of 20 users", plan["guard"])
        apply = f"/api/v1/companies/guarded/imports/{plan['plan_id']}/apply"
        status, body, _ = ops.call("POST", apply, {})
        self.assertEqual((status, body["error"]["field"]), (409, "force"), body)
        self.assertIn("deletion guard: the sync would delete 19 of 20 users", body["error"]["message"])
        users = ops.call("GET", "/api/v1/companies/guarded/users?limit=100")[1]
        self.assertEqual(users["company_users"], 20)
        status, body, _ = ops.call("POST", apply, {"force": True})
        self.assertEqual((status, body["deleted"]), (200, 19), body)
        self.assertEqual(ops.call("GET", "/api/v1/companies/guarded/users?limit=100")[1]["company_users"], 1)

    def test_azure_sync_settings_search_and_run(self):
        graph = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "..",
                                                               "graph", "fake_graph.py"),
                                  "--users", "20"], stdout=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{int(graph.stdout.readline().split()[1])}"
            adm = self.client("admin@acme.example")
            path = "/api/v1/companies/acme/sync/azure"

            def run_sync(request):
                """POST .../run; a 409 says the scheduler of this serve runs the same sync (it
                is daily here, so due at once): try again when it has finished."""
                for _ in range(100):
                    answer = adm.call("POST", path + "/run", request)
                    if answer[0] != 409:
                        return answer
                    time.sleep(0.1)
                return answer
            self.assertEqual(adm.call("GET", path)[0], 404)  # not configured yet
            settings = {"tenant_id": "contoso-tenant", "client_id": "mailroster-app",
                        "login_url": url, "graph_url": url}
            status, body, _ = adm.call("PUT", path, {"settings": settings,
                                                     "options": {"frequency_hours": 24},
                                                     "secret": "graph-secret"})
            self.assertEqual(status, 200, body)
            self.assertNotIn("graph-secret", json.dumps(body))
            self.assertTrue(body["secret_set"])
            status, body, _ = adm.call("PUT", path, {"options": {"frequency_hours": 5}})
            self.assertEqual((status, body["error"]["field"]), (400, "frequency_hours"))
            # A daily sync turns SMTP Discovery off (the seed), and the administrator is told.
            settings_path = "/api/v1/companies/acme/discovery-settings"
            was = adm.call("GET", settings_path)[1]["enabled"]
            self.assertEqual(adm.call("PATCH", settings_path, {"enabled": True})[0], 200)
            status, st, _ = adm.call("GET", "/api/v1/companies/acme/discovery-status")
            self.assertEqual((status, st["enabled"], st["active"]), (200, True, False), st)
            self.assertIn("every 24 hours", st["reason"])
            self.assertEqual(adm.call("PUT", path, {"options": {"frequency_hours": 12}})[0], 200)
            st = adm.call("GET", "/api/v1/companies/acme/discovery-status")[1]
            self.assertEqual((st["active"], st["reason"]), (True, None), st)
            self.assertEqual(adm.call("PUT", path, {"options": {"frequency_hours": 24}})[0], 200)
            self.assertEqual(adm.call("PATCH", settings_path, {"enabled": was})[0], 200)
            status, body, _ = adm.call("POST", path + "/test", {})
            self.assertEqual(status, 200, body)
            # With corp.example acme's, Search Now plans its users; the plan is paged through.
            ops = self.client("ops@mailroster.example")
            self.assertEqual(ops.call("POST", "/api/v1/companies/acme/domains",
                                      {"name": "corp.example", "destination": "127.0.0.1:25"})[0],
                             201)
            try:
                status, plan, _ = adm.call("POST", path + "/search", {})
                total = plan["counts"]["create"]
                self.assertGreater(total, 20, plan)
                seen, offset = [], 0
                while offset is not None:
                    status, page, _ = adm.call(
                        "GET", f"/api/v1/companies/acme/plans/{plan['plan_id']}/creates"
                               f"?limit=7&offset={offset}")
                    self.assertEqual((status, page["total"]), (200, total), page)
                    seen += [i["address"] for i in page["items"]]
                    offset = page.get("next_offset")
                self.assertEqual(seen, [i["address"] for i in plan["creates"]])  # all shown
                self.assertEqual(len(set(seen)), total)
                self.assertEqual(adm.call("POST", f"/api/v1/companies/acme/imports/"
                                                  f"{plan['plan_id']}/apply", {})[0], 404)
            finally:
                ops.call("DELETE", "/api/v1/companies/acme/domains/corp.example")
            status, plan, _ = adm.call("POST", path + "/search", {})
            self.assertEqual(status, 200, plan)
            self.assertEqual(plan["counts"]["create"], 0)  # corp.example is not acme's domain
            self.assertGreater(len(plan["rejected"]), 20)
            status, body, _ = run_sync({})
            self.assertEqual((status, body["created"]), (200, 0), body)
            self.assertIsNotNone(adm.call("GET", path)[1]["last_success"])
            status, body, _ = run_sync({})  # changes since the last
            self.assertEqual((status, body["info"]["incremental"]), (200, True), body)
            status, body, _ = run_sync({"full": True})
            self.assertEqual((status, body["info"]["incremental"]), (200, False), body)
            self.assertEqual(run_sync({"full": "yes"})[0], 400)
            # Search Now as the next run reads (changes only now), or everything with {full}; a
            # request with no body at all is one with no fields.
            status, plan, _ = adm.call("POST", path + "/search", raw="")
            self.assertEqual((status, plan["info"]["incremental"]), (200, True), plan)
            status, plan, _ = adm.call("POST", path + "/search", {"full": True})
            self.assertEqual((status, plan["info"]["incremental"]), (200, False), plan)
            self.assertEqual(adm.call("POST", path + "/search", {"full": 1})[0], 400)
            # For alerts: when each sync last succeeded, and whether its last attempt failed.
            metric = lambda name: re.search(r'^%s\{company="acme",kind="azure"\} (\S+)$' % name,
                                            urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port)
                                            .read().decode(), re.M)
            since = time.time() - float(metric("mailroster_directory_sync_last_success_timestamp_seconds")[1])
            self.assertTrue(0 <= since < 120, since)
            self.assertEqual(metric("mailroster_directory_sync_failing")[1], "0")
            self.assertEqual(adm.call("PUT", path, {"secret": "not-the-secret"})[0], 200)
            status, body, _ = run_sync({})
            self.assertEqual(status, 503, body)
            self.assertEqual(metric("mailroster_directory_sync_failing")[1], "1")
            # Operators see every company's syncs, failing or not.
            status, every, _ = self.client("ops@mailroster.example").call("GET", "/api/v1/syncs")
            self.assertEqual(status, 200, every)
            mine = [s for s in every["items"] if (s["company"], s["kind"]) == ("acme", "azure")]
            self.assertEqual(len(mine), 1, every)
            self.assertTrue(mine[0]["failing"])
            self.assertIn("Invalid client secret", mine[0]["last_error"])
            self.assertEqual(mine[0]["frequency_hours"], 24)
            self.assertIsNotNone(mine[0]["last_success"])
            self.assertEqual(adm.call("GET", "/api/v1/syncs")[0], 403)
            self.assertEqual(adm.call("PUT", path, {"secret": "graph-secret"})[0], 200)
            self.assertEqual(adm.call("GET", "/api/v1/companies/globex/sync/azure")[0], 404)
            self.assertEqual(adm.call("GET", "/api/v1/companies/acme/sync/nis")[0], 404)
            alice = self.client("alice@acme.example")
            self.assertEqual(alice.call("GET", path)[0], 404)
        finally:
            graph.kill()
            graph.wait()

    def test_the_mail_log_for_company_administrators(self):
        """What the gateway answered for each recipient, per company: an administrator sees
        the company's own, found by address and result; bad filters are 400 naming them."""
        smtp_port = int(re.search(r"inbound SMTP listening on 127\.0\.0\.1:(\d+)",
                                  open(self.log.name).read()).group(1))
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
            s.ehlo("client.example")
            s.mail("trace@example.org")
            for to in ("stranger@acme.example", "stranger@globex.example"):
                self.assertEqual(s.rcpt(to)[0], 550)  # discovery is off: user unknown
        adm, ops = self.client("admin@acme.example"), self.client("ops@mailroster.example")
        path = "/api/v1/companies/acme/mail-log?address=STRANGER@"
        for _ in range(100):  # serve writes the log every second
            status, page, _ = adm.call("GET", path)
            if status != 200 or page["total"]:
                break
            time.sleep(0.1)
        self.assertEqual(status, 200, page)
        self.assertEqual(page["total"], 1, page)
        entry = page["items"][0]
        self.assertEqual((entry["recipient"], entry["sender"], entry["result"], entry["code"],
                          entry["stage"], entry["direction"]),
                         ("stranger@acme.example", "trace@example.org", "rejected", 550, "rcpt",
                          "inbound"))
        self.assertIn("user unknown", entry["reply"])
        self.assertEqual(adm.call("GET", path + "&result=rejected&since=1h&direction=inbound")[1]["total"], 1)
        self.assertEqual(adm.call("GET", path + "&result=delivered")[1]["total"], 0)
        self.assertEqual(adm.call("GET", path + "&id=5.1.1")[1]["total"], 1)  # in its reply
        self.assertEqual(adm.call("GET", path + "&id=no-such-id")[1]["total"], 0)
        self.assertEqual(adm.call("GET", path + "&before=2000-01-01")[1]["total"], 0)
        # Another company's log: not this administrator's; the operator's.
        self.assertEqual(adm.call("GET", "/api/v1/companies/globex/mail-log")[0], 404)
        status, theirs, _ = ops.call("GET", "/api/v1/companies/globex/mail-log?address=stranger")
        self.assertEqual([e["recipient"] for e in theirs["items"]], ["stranger@globex.example"])
        self.assertIn(self.client("alice@acme.example").call(
            "GET", "/api/v1/companies/acme/mail-log")[0], (403, 404))
        # Every company's, for operators only: each entry names its company.
        status, every, _ = ops.call("GET", "/api/v1/mail-log?address=stranger@&direction=inbound")
        self.assertEqual(status, 200, every)
        self.assertEqual(sorted((e["company"], e["recipient"]) for e in every["items"]),
                         [("acme", "stranger@acme.example"), ("globex", "stranger@globex.example")])
        self.assertEqual(adm.call("GET", "/api/v1/mail-log")[0], 403)
        self.assertEqual(ops.call("GET", "/api/v1/mail-log?since=never")[1]["error"]["field"], "since")
        for query, field in (("result=lost", "result"), ("direction=sideways", "direction"),
                             ("since=last+week", "since"), ("before=soon", "before"),
                             ("limit=0", "limit")):
            status, body, _ = adm.call("GET", "/api/v1/companies/acme/mail-log?" + query)
            self.assertEqual((status, body["error"]["field"]), (400, field), body)

    def test_licensed_users_per_day_for_billing(self):
        """Each maintenance run counts the licensed users of the day: a company administrator
        reads the company's days, an operator every company's; bad filters are 400s."""
        # Runs by hand for given days (serve holds the scheduler lease: --force), on a Monday
        # in October, which no other test here touches.
        cli(self.db, "maintain", "--force", "--at", "2026-10-12T09:00:00Z")
        cli(self.db, "maintain", "--force", "--at", "2026-10-13T09:00:00Z")
        acme_users = len(json.loads(cli(self.db, "user", "list", "--company", "acme", "--json")))
        adm, ops = self.client("admin@acme.example"), self.client("ops@mailroster.example")
        status, body, _ = adm.call("GET", "/api/v1/companies/acme/usage?month=2026-10")
        self.assertEqual(status, 200, body)
        self.assertEqual((body["from"], body["to"]), ("2026-10-01", "2026-10-31"))
        [acme] = body["companies"]
        self.assertEqual((acme["company"], acme["days_counted"]), ("acme", 2))
        self.assertEqual([d["day"] for d in acme["days"]], ["2026-10-12", "2026-10-13"])
        self.assertEqual(acme["last"]["users"], acme_users)
        self.assertEqual(acme["last"]["counted_at"], "2026-10-13T09:00:00Z")
        self.assertEqual(acme["last"]["users"], acme["last"]["end_users"] +
                         acme["last"]["silent_users"] + acme["last"]["functional"])
        status, body, _ = adm.call("GET", "/api/v1/companies/acme/usage?from=2026-10-13&to=2026-10-13")
        self.assertEqual([d["day"] for d in body["companies"][0]["days"]], ["2026-10-13"])
        # The current month by default (serve counted today when it started).
        status, body, _ = adm.call("GET", "/api/v1/companies/acme/usage")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["from"], time.strftime("%Y-%m-01", time.gmtime()))
        today = body["companies"][0]["last"]
        self.assertEqual(today["day"], time.strftime("%Y-%m-%d", time.gmtime()))
        # The same count, for Prometheus, from the node that counted it.
        metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port).read().decode()
        self.assertIn('mailroster_licensed_users{company="acme"} %d\n' % today["users"], metrics)
        # Another company's: not this administrator's; every company's: operators only.
        self.assertEqual(adm.call("GET", "/api/v1/companies/globex/usage")[0], 404)
        self.assertEqual(adm.call("GET", "/api/v1/usage")[0], 403)
        self.assertIn(self.client("alice@acme.example").call(
            "GET", "/api/v1/companies/acme/usage")[0], (403, 404))
        status, every, _ = ops.call("GET", "/api/v1/usage?month=2026-10")
        self.assertEqual(status, 200, every)
        names = [c["company"] for c in every["companies"]]
        self.assertEqual(names, sorted(names))
        self.assertIn("acme", names)
        self.assertIn("globex", names)
        # As a CSV file, a line per company and day.
        status, headers, data = adm.fetch("/api/v1/companies/acme/usage.csv?month=2026-10")
        self.assertEqual(status, 200, data)
        self.assertEqual(headers["content-type"], "text/csv; charset=utf-8")
        self.assertIn('filename="acme-usage-2026-10-01-2026-10-31.csv"', headers["content-disposition"])
        lines = data.decode().split("\r\n")
        self.assertEqual(lines[0], "day,company,users,peak_users,end_users,silent_users,functional,from_discovery")
        self.assertEqual(lines[1].split(",")[:3], ["2026-10-12", "acme", str(acme_users)])
        self.assertEqual(len(lines), 4)  # two days, and the last line's end
        self.assertEqual(adm.fetch("/api/v1/usage.csv")[0], 403)
        status, _, data = ops.fetch("/api/v1/usage.csv?from=2026-10-12&to=2026-10-12")
        self.assertEqual(status, 200)
        self.assertIn(f"\r\n2026-10-12,acme,{acme_users},", data.decode())
        for query, field in (("month=2026-13", "month"), ("month=2026-10&from=2026-10-01", "month"),
                             ("from=2026-02-30", "from"), ("to=soon", "to"),
                             ("from=2026-10-13&to=2026-10-12", "to")):
            status, body, _ = ops.call("GET", "/api/v1/usage?" + query)
            self.assertEqual((status, body["error"]["field"]), (400, field), body)

    def test_every_route_for_every_role(self):
        """Every route of the OpenAPI document: 401 without a session; for a company admin of
        acme, every route naming globex (or one of its users) is 404; for an end user, every
        company route is 403 or 404 and another user's routes are 404."""
        doc = Client(self.port).call("GET", "/api/v1/openapi.json")[1]
        hank = self.ids["hank@globex.example"]
        bob = self.ids["bob@acme.example"]
        adm, alice = self.client("admin@acme.example"), self.client("alice@acme.example")
        fill = {"company": "globex", "id": str(hank), "kind": "ldap", "domain": "globex.example",
                "address": "x%40globex.example", "plan": "0", "list": "creates",
                "email": "x%40globex.example"}
        checked = 0
        sample = {"string": "x", "boolean": False, "array": [], "object": {}, "integer": 0}
        for path, ops in doc["paths"].items():
            for method in ops:
                m = method.upper()
                # A body the document's schema takes (the body is checked before the target).
                schema = ops[method].get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
                body = {f: sample[schema["properties"][f]["type"]] for f in schema.get("required", [])}
                concrete = re.sub(r"\{(\w+)\}", lambda g: fill[g.group(1)], path)
                public = path in ("/api/v1/login", "/api/v1/openapi.json", "/api/v1/password/forgot",
                                  "/api/v1/password/reset")
                if not public:
                    self.assertEqual(Client(self.port).call(m, concrete, {})[0], 401, (m, path))
                if "{company}" in path or "{id}" in path:
                    status, answer, _ = adm.call(m, concrete, body)
                    self.assertEqual(status, 404, (m, path, answer))
                    self.assertNotIn("globex.example", json.dumps(answer))
                    if "{company}" in path:
                        acme = re.sub(r"\{(\w+)\}", lambda g: dict(fill, company="acme",
                                                                     id=str(bob))[g.group(1)], path)
                        self.assertIn(alice.call(m, acme, body)[0], (403, 404), (m, path))
                    else:
                        other = path.replace("{id}", str(bob))
                        other = re.sub(r"\{(\w+)\}", lambda g: fill[g.group(1)], other)
                        self.assertEqual(alice.call(m, other, body)[0], 404, (m, path))
                checked += 1
        self.assertGreaterEqual(checked, 30)

    def test_what_the_gateway_answers_for_an_address_of_the_company(self):
        admin = Client(self.port)
        admin.login("admin@acme.example")
        status, body, _ = admin.call("GET", "/api/v1/companies/acme/recipients/alice%2Bnews@acme.example")
        self.assertEqual(status, 200, body)
        self.assertEqual((body["answer"], body["decided_as"], body["owner"]["kind"], body["company"]),
                         ("accept", "alice@acme.example", "user", "acme"))
        self.assertEqual(body["reply"], {"code": 250, "text": "2.1.5 Ok"})
        status, body, _ = admin.call("GET", "/api/v1/companies/acme/recipients/nobody.here@acme.example")
        self.assertEqual(status, 200)  # another test may turn acme's discovery on
        self.assertEqual(body["answer"], "callout" if body["discovering"] else "unknown", body)
        status, body, _ = admin.call("GET", "/api/v1/companies/acme/recipients/x@nowhere.example")
        self.assertEqual((status, body["answer"], body["company"]), (200, "relay_denied", None))
        # Another company's domain is not the administrator's to ask about.
        status, body, _ = admin.call("GET", "/api/v1/companies/acme/recipients/hank@globex.example")
        self.assertEqual(status, 404, body)
        self.assertEqual(admin.call("GET", "/api/v1/companies/globex/recipients/hank@globex.example")[0], 404)
        status, body, _ = admin.call("GET", "/api/v1/companies/acme/recipients/not%20an%20address")
        self.assertEqual((status, body["error"]["field"]), (400, "address"))
        ops = Client(self.port)
        ops.login("ops@mailroster.example")
        status, body, _ = ops.call("GET", "/api/v1/companies/globex/recipients/hank@globex.example")
        self.assertEqual((status, body["answer"]), (200, "accept"))
        status, body, _ = ops.call("GET", "/api/v1/companies/globex/recipients/nobody@globex.example")
        self.assertEqual((status, body["answer"], body["reply"]["code"]), (200, "unknown", 550))
        alice = Client(self.port)
        alice.login("alice@acme.example")
        self.assertEqual(alice.call("GET", "/api/v1/companies/acme/recipients/alice@acme.example")[0], 404)
        self.assertEqual(Client(self.port).call("GET", "/api/v1/companies/acme/recipients/a@acme.example")[0], 401)

    def test_zz_logins_are_rate_limited(self):
        c = Client(self.port)
        statuses = [c.login("admin@acme.example", "wrong password")[0] for _ in range(6)]
        self.assertEqual(statuses[-1], 429, statuses)  # at most 5 failures in the window
        self.assertLessEqual(statuses.count(401), 5)
        status, body, _ = c.login("admin@acme.example")  # even the right password, for now
        self.assertEqual(status, 429)
        self.assertEqual(body["error"]["code"], "rate_limited")


class ApiOverTls(unittest.TestCase):
    """[admin] tls_cert/tls_key: HTTPS, and the session cookie is Secure."""

    def test_https_with_a_secure_cookie(self):
        import ssl
        d = tempfile.mkdtemp(prefix="mailroster-api-tls-")
        try:
            cert, key = self_signed(d, "127.0.0.1", ip="127.0.0.1", files=("cert.pem", "key.pem"))
            db = new_database(d)
            cli(db, "operator", "add", "ops@mailroster.example", stdin=PASSWORD + "\n")
            # A fixed port, so that the CLI (`verify flush`) finds the admin port in the config.
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                admin_port = probe.getsockname()[1]
            config = os.path.join(d, "c.toml")
            with open(config, "w") as f:
                f.write(f'[database]\n{database_toml(db, d)}\n[admin]\n'
                        f'listen = "127.0.0.1:{admin_port}"\n'
                        f'tls_cert = "{cert}"\ntls_key = "{key}"\n[smtp]\n'
                        'inbound_listen = "127.0.0.1:0"\n[outbound]\nlisten = "127.0.0.1:0"\n')
            log_path = os.path.join(d, "serve.log")
            with open(log_path, "w") as log:
                proc = subprocess.Popen([BINARY, "--config", config, "serve"], stdout=log,
                                        stderr=log)
                try:
                    port = None
                    for _ in range(200):
                        m = re.search(r"admin HTTPS listening on 127\.0\.0\.1:(\d+)",
                                      open(log_path).read())
                        if m:
                            port = int(m.group(1))
                            break
                        time.sleep(0.05)
                    self.assertIsNotNone(port, open(log_path).read())
                    ctx = ssl.create_default_context(cafile=cert)
                    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
                    conn.request("POST", "/api/v1/login", body=json.dumps(
                        {"email": "ops@mailroster.example", "password": PASSWORD}),
                        headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    r.read()
                    self.assertEqual(r.status, 200)
                    self.assertIn("; Secure", r.getheader("Set-Cookie"))
                    conn.close()
                    # The CLI's `verify flush` reaches the running service over HTTPS, trusting
                    # the configured certificate ...
                    out = subprocess.run([BINARY, "--config", config, "verify", "flush", "--json"],
                                         capture_output=True, text=True, timeout=30)
                    self.assertEqual(out.returncode, 0, out.stderr)
                    self.assertEqual(json.loads(out.stdout)["removed"], 0)
                    # ... and no other: with another certificate configured it refuses to talk.
                    other_cert, other_key = self_signed(d, "127.0.0.1", files=("o.pem", "o.key"))
                    other = os.path.join(d, "other.toml")
                    with open(other, "w") as f:
                        f.write(open(config).read().replace(cert, other_cert))
                    out = subprocess.run([BINARY, "--config", other, "verify", "flush"],
                                         capture_output=True, text=True, timeout=30)
                    self.assertNotEqual(out.returncode, 0)
                    self.assertIn("certificate verify failed", out.stderr)
                    # Plain HTTP to the HTTPS port gets no answer.
                    plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    with self.assertRaises((http.client.HTTPException, OSError)):
                        plain.request("GET", "/healthz")
                        plain.getresponse().read()
                finally:
                    proc.terminate()
                    proc.wait(10)
        finally:
            shutil.rmtree(d, ignore_errors=True)


class ApiBehindReverseProxy(unittest.TestCase):
    """[admin] trusted_proxies: behind a real HAProxy (HTTP mode, `option forwardfor`) the login
    limit counts each browser by the address X-Forwarded-For names, not the proxy's one address
    (which would let five wrong passwords lock everyone out); a header from anyone else, or
    written by the browser itself, is not believed. An https:// public_url (TLS ends at the
    proxy) makes the session cookie Secure."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mailroster-api-proxy-")
        db = new_database(cls.dir)
        cli(db, "operator", "add", "ops@mailroster.example", stdin=PASSWORD + "\n")
        config = os.path.join(cls.dir, "c.toml")
        with open(config, "w") as f:
            f.write(f'[database]\n{database_toml(db, cls.dir)}\n[admin]\nlisten = "127.0.0.1:0"\n'
                    'trusted_proxies = ["127.0.0.1"]\npublic_url = "https://gw.mailroster.test"\n'
                    '[smtp]\ninbound_listen = "127.0.0.1:0"\n[outbound]\nlisten = "127.0.0.1:0"\n')
        gw.BINARY = BINARY
        gw.start_gateway(cls, config)
        cls.front = gw.free_port()
        cls.haproxy = HAProxy(
            cls.dir,
            "defaults\n  mode http\n  option forwardfor\n  timeout connect 5s\n"
            "  timeout client 30s\n  timeout server 30s\n"
            f"frontend web\n  bind 127.0.0.1:{cls.front}\n  default_backend gw\n"
            f"backend gw\n  server gw 127.0.0.1:{cls.admin_port}\n",
            (cls.front,))

    @classmethod
    def tearDownClass(cls):
        cls.haproxy.stop()
        gw.stop_gateway(cls)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def login(self, email, source, port=None, forwarded_for=None, password="wrong password"):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.front, timeout=30,
                                          source_address=(source, 0))
        headers = {"Content-Type": "application/json"}
        if forwarded_for:
            headers["X-Forwarded-For"] = forwarded_for
        conn.request("POST", "/api/v1/login", body=json.dumps({"email": email, "password": password}),
                     headers=headers)
        r = conn.getresponse()
        r.read()
        conn.close()
        return r.status, r.getheader("Set-Cookie")

    def test_the_login_limit_counts_the_browser_the_proxy_names(self):
        # Five wrong passwords from 127.0.0.2, each for another email (the per-email limit
        # stays out of it): the sixth try from there is refused ...
        statuses = [self.login(f"guess{i}@example.com", "127.0.0.2")[0] for i in range(6)]
        self.assertEqual(statuses, [401] * 5 + [429])
        # ... though it says it comes from elsewhere: the proxy appends what it saw.
        self.assertEqual(self.login("guess6@example.com", "127.0.0.2", forwarded_for="127.0.0.3")[0], 429)
        # Another browser behind the same proxy is someone else ...
        status, _ = self.login("ops@mailroster.example", "127.0.0.3", password=PASSWORD)
        self.assertEqual(status, 200)
        # ... and a request straight to the gateway, not from the proxy, is its own client,
        # whatever its header says.
        self.assertEqual(self.login("guess7@example.com", "127.0.0.4", port=self.admin_port,
                                    forwarded_for="127.0.0.2")[0], 401)

    def test_an_https_public_url_makes_the_session_cookie_secure(self):
        status, cookie = self.login("ops@mailroster.example", "127.0.0.5", password=PASSWORD)
        self.assertEqual(status, 200)
        self.assertIn("; Secure", cookie)


def main():
    global BINARY
    BINARY, argv = databases.suite_arguments()
    unittest.main(argv=argv, verbosity=2)


if __name__ == "__main__":
    main()
