#!/usr/bin/env python3
"""A local stand-in for Microsoft Entra ID's token endpoint and Microsoft Graph v1.0, for the
Azure AD sync tests (Graph cannot run here). Loopback only. It speaks the parts of the
protocol mailroster uses, with their real shapes:

  POST /{tenant}/oauth2/v2.0/token        client credentials -> bearer token (expires_in)
  GET  /v1.0/users?$select&$top           paged with @odata.nextLink
  GET  /v1.0/users/delta?$select          initial round, then @odata.deltaLink
  GET  /v1.0/users/delta?$deltatoken=latest   just a deltaLink for "now"
  GET  /v1.0/users/delta?$deltatoken=N    changed users, removed ones as {"id", "@removed"}
  GET  /v1.0/groups?$select&$top          paged
  GET  /v1.0/groups/{id}/transitiveMembers    paged (nested membership resolved, as Graph)

and lets a test inject faults through POST /_control (JSON):
  {"action": "throttle", "path": "/v1.0/users", "count": 1, "retry_after": 1}  -> 429s
  {"action": "fail", "path": "/v1.0/users", "after": 2, "status": 500}  -> the 3rd GET of
                                  exactly that path (here: the third page of users)
  {"action": "expire_deltas"}     every delta token given so far answers 410 (resync)
  {"action": "set_user", "user": {...}} / {"action": "remove_user", "id": "..."}
  {"action": "expire_tokens"}     bearer tokens issued so far are rejected (401)
  {"action": "stall", "path": "/v1.0/groups", "seconds": 5}  -> answers that late
  {"action": "next_link", "path": "/v1.0/users", "url": U}  -> every page of that path says
                                  its @odata.nextLink is U (a loop, another server)
  {"action": "delta_link", "value": V}  -> every deltaLink given is V (any JSON value)
  {"action": "pad", "path": "/v1.0/groups", "bytes": N}  -> answers carry N bytes more
  {"action": "set_group", "group": {...}, "members": [ids]}
GET /_log returns the requests seen: [{"method", "path", "status"}].

Usage: fake_graph.py [--users N] [--page-size N]; prints "PORT <n>" when listening.
"""
import argparse
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TENANT = "contoso-tenant"
CLIENT_ID = "mailroster-app"
CLIENT_SECRET = "graph-secret"


class State:
    def __init__(self, users, page_size):
        self.lock = threading.Lock()
        self.page_size = page_size
        self.seq = 1
        self.users = {}       # id -> user
        self.changed = {}     # id -> seq of last change
        self.removed = {}     # id -> seq of removal
        self.groups = {}
        self.members = {}     # group id -> [member ids] (transitive)
        self.tokens = set()
        self.token_count = 0
        self.delta_floor = 0  # delta tokens below this are expired
        self.throttles = []
        self.fails = []
        self.stalls = []
        self.next_links = {}  # path -> nextLink every page of it gives
        self.delta_link = None
        self.pads = {}        # path -> bytes added to its answers
        self.log = []
        for u in users:
            self.users[u["id"]] = u
            self.changed[u["id"]] = 0

    def bump(self):
        self.seq += 1
        return self.seq


def user(i, mail, given, surname, *, enabled=True, proxies=None, user_type="Member", upn=None):
    return {"id": f"00000000-0000-0000-0000-{i:012d}", "accountEnabled": enabled, "mail": mail,
            "userPrincipalName": upn or (mail or f"u{i}@contoso.onmicrosoft.com"),
            "givenName": given, "surname": surname,
            "proxyAddresses": proxies if proxies is not None else
            ([f"SMTP:{mail}"] if mail else []), "userType": user_type}


def fixtures(n):
    users = [
        user(1, "alice@corp.example", "Alice", "Smith",
             proxies=["smtp:a.smith@corp.example", "SIP:alice@corp.example",
                      "SMTP:alice@corp.example", "X500:/o=Contoso/cn=alice"]),
        user(2, "bob@corp.example", "Bob", "Jones", enabled=False),
        user(3, None, "No", "Mailbox"),
        user(4, "guest@partner.example", "Gus", "Guest", user_type="Guest"),
    ]
    users += [user(100 + i, f"user{i:04d}@corp.example", f"First{i}", f"Last{i}") for i in range(n)]
    groups = [
        {"id": "g-staff", "displayName": "Staff", "mail": "staff@corp.example", "mailEnabled": True,
         "securityEnabled": True, "proxyAddresses": ["SMTP:staff@corp.example"]},
        {"id": "g-news", "displayName": "News", "mail": "news@corp.example", "mailEnabled": True,
         "securityEnabled": False, "proxyAddresses": ["SMTP:news@corp.example"]},
        {"id": "g-sec", "displayName": "No mail", "mail": None, "mailEnabled": False,
         "securityEnabled": True, "proxyAddresses": []},
    ]
    members = {"g-staff": [u["id"] for u in users[:2]] + [u["id"] for u in users[4:4 + min(n, 150)]],
               "g-news": [users[0]["id"]], "g-sec": []}
    return users, groups, members


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=None):
        path = urllib.parse.urlparse(self.path).path
        if status == 200 and isinstance(body, dict):
            if "@odata.deltaLink" in body and self.state.delta_link is not None:
                body["@odata.deltaLink"] = self.state.delta_link
            if path in self.state.next_links:
                body["@odata.nextLink"] = self.state.next_links[path]
            if self.state.pads.get(path):
                body["padding"] = "x" * self.state.pads[path]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.state.log.append({"method": self.command, "path": self.path, "status": status})

    def base(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def graph_error(self, status, code, message, headers=None):
        self.reply(status, {"error": {"code": code, "message": message}}, headers)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length).decode()
        s = self.state
        path = urllib.parse.urlparse(self.path).path
        if path == "/_control":
            return self.control(json.loads(body))
        if path == f"/{TENANT}/oauth2/v2.0/token":
            form = urllib.parse.parse_qs(body)
            get = lambda k: form.get(k, [""])[0]
            if get("grant_type") != "client_credentials" or not get("scope").endswith("/.default"):
                return self.reply(400, {"error": "invalid_request",
                                        "error_description": "AADSTS900144: bad request"})
            if get("client_id") != CLIENT_ID or get("client_secret") != CLIENT_SECRET:
                return self.reply(401, {"error": "invalid_client", "error_description":
                                        "AADSTS7000215: Invalid client secret provided."})
            with s.lock:
                s.token_count += 1
                token = f"token-{s.token_count}"
                s.tokens.add(token)
            return self.reply(200, {"token_type": "Bearer", "expires_in": 3599,
                                    "access_token": token})
        if path.endswith("/oauth2/v2.0/token"):
            return self.reply(400, {"error": "invalid_request", "error_description":
                                    "AADSTS90002: Tenant not found."})
        self.graph_error(404, "Request_ResourceNotFound", "no such resource")

    def control(self, c):
        s = self.state
        with s.lock:
            a = c["action"]
            if a == "throttle":
                s.throttles.append(dict(c))
            elif a == "fail":
                s.fails.append(dict(c, seen=0))
            elif a == "expire_deltas":
                s.delta_floor = s.bump()
            elif a == "stall":
                s.stalls.append(dict(c))
            elif a == "next_link":  # "url": null ends it
                s.next_links[c["path"]] = c["url"]
                if c["url"] is None:
                    del s.next_links[c["path"]]
            elif a == "delta_link":  # "value": null ends it
                s.delta_link = c["value"]
            elif a == "pad":  # "bytes": 0 ends it
                s.pads[c["path"]] = c["bytes"]
            elif a == "set_group":
                s.groups[c["group"]["id"]] = c["group"]
                s.members[c["group"]["id"]] = c.get("members", [])
            elif a == "expire_tokens":
                s.tokens.clear()
            elif a == "set_user":
                u = c["user"]
                s.users[u["id"]] = u
                s.changed[u["id"]] = s.bump()
                s.removed.pop(u["id"], None)
            elif a == "remove_user":
                s.users.pop(c["id"], None)
                s.removed[c["id"]] = s.bump()
        self.reply(200, {"ok": True})

    def page(self, items, key, query):
        size = int(query.get("$top", [self.state.page_size])[0])
        size = min(size, self.state.page_size)
        skip = int(query.get("$skiptoken", ["0"])[0])
        body = {"@odata.context": f"{self.base()}/v1.0/$metadata#{key}",
                "value": items[skip:skip + size]}
        if skip + size < len(items):
            q = {k: v[0] for k, v in query.items() if k != "$skiptoken"}
            q["$skiptoken"] = str(skip + size)
            body["@odata.nextLink"] = (f"{self.base()}{urllib.parse.urlparse(self.path).path}?"
                                       + urllib.parse.urlencode(q, safe="$,"))
        return body

    def select(self, obj, query):
        fields = query.get("$select", [""])[0]
        if not fields:
            return dict(obj)
        keep = set(fields.split(",")) | {"id"}
        return {k: v for k, v in obj.items() if k in keep}

    def do_GET(self):
        s = self.state
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/_log":
            data = json.dumps(s.log).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        for st in list(s.stalls):
            if url.path.startswith(st["path"]):
                time.sleep(st["seconds"])
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in s.tokens:
            return self.graph_error(401, "InvalidAuthenticationToken",
                                    "Access token has expired or is not valid yet.")
        with s.lock:
            for t in s.throttles:
                if url.path.startswith(t["path"]) and t["count"] > 0:
                    t["count"] -= 1
                    return self.graph_error(429, "TooManyRequests", "Too many requests",
                                            {"Retry-After": str(t["retry_after"])})
            for f in s.fails:
                if url.path == f["path"]:
                    f["seen"] += 1
                    if f["seen"] == f["after"] + 1:
                        return self.graph_error(f["status"], "generalException",
                                                "An internal server error occurred.")
            users = [self.select(u, query) for u in s.users.values()]
            if url.path == "/v1.0/users":
                return self.reply(200, self.page(users, "users", query))
            if url.path == "/v1.0/users/delta":
                token = query.get("$deltatoken", [None])[0]
                link = lambda: (f"{self.base()}/v1.0/users/delta?$deltatoken={s.seq}&$select="
                                + query.get("$select", [""])[0])
                if token == "latest":
                    return self.reply(200, {"value": [], "@odata.deltaLink": link()})
                if token is not None:
                    since = int(token)
                    if since < s.delta_floor:
                        return self.graph_error(410, "syncStateNotFound",
                                                "The sync state is not valid; resync required.")
                    items = [self.select(s.users[i], query) for i, q in s.changed.items()
                             if q > since and i in s.users]
                    items += [{"id": i, "@removed": {"reason": "deleted"}}
                              for i, q in s.removed.items() if q > since]
                    return self.reply(200, {"value": items, "@odata.deltaLink": link()})
                body = self.page(users, "users", query)
                if "@odata.nextLink" not in body:
                    body["@odata.deltaLink"] = link()
                return self.reply(200, body)
            if url.path == "/v1.0/groups":
                groups = [self.select(g, query) for g in s.groups.values()]
                return self.reply(200, self.page(groups, "groups", query))
            parts = url.path.split("/")
            if len(parts) == 5 and parts[2] == "groups" and parts[4] == "transitiveMembers":
                if parts[3] not in s.groups:
                    return self.graph_error(404, "Request_ResourceNotFound", "no such group")
                members = [{"@odata.type": "#microsoft.graph.user", "id": m}
                           for m in s.members.get(parts[3], [])]
                return self.reply(200, self.page(members, "directoryObjects", query))
        self.graph_error(404, "Request_ResourceNotFound", "no such resource: " + url.path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--users", type=int, default=250)
    p.add_argument("--page-size", type=int, default=100)
    a = p.parse_args()
    users, groups, members = fixtures(a.users)
    state = State(users, a.page_size)
    state.groups = {g["id"]: g for g in groups}
    state.members = members
    Handler.state = state
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
