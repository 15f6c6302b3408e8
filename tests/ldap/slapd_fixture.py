#!/usr/bin/env python3
"""A real OpenLDAP slapd for the directory-sync tests and benchmark, on loopback ports.

    slapd_fixture.py start DIR [--users N] [--big-group N]   -> prints JSON (ports, pid, ...)
    slapd_fixture.py stop DIR

DIR gets a test CA and server certificate (openssl), slapd.conf with the AD-lite schema,
an mdb database loaded with slapadd from generated LDIF, and slapd listening on
ldap://127.0.0.1:P (StartTLS too) and ldaps://127.0.0.1:Q. The server's size limit is 1,000
entries (as AD's page limit), so only a paged search reads more.
"""
import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = "dc=corp,dc=example"
SERVICE_DN = "cn=sync,ou=service," + BASE
SERVICE_PASSWORD = "sync-secret"
ADMIN_DN = "cn=admin," + BASE
ADMIN_PASSWORD = "admin-secret"
SLAPD = "/usr/sbin/slapd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def guid(name):
    return base64.b64encode(uuid.uuid5(uuid.NAMESPACE_DNS, name).bytes_le).decode()


def person(uid, mail, given, sn, *, proxies=(), uac=512, hidden=None, rtype=None, objguid=True):
    lines = [f"dn: cn={uid},ou=people,{BASE}", "objectClass: inetOrgPerson",
             "objectClass: adUser", f"cn: {uid}", f"sn: {sn}", f"givenName: {given}"]
    if mail:
        lines.append(f"mail: {mail}")
    lines += [f"proxyAddresses: {p}" for p in proxies]
    lines.append(f"userAccountControl: {uac}")
    if hidden is not None:
        lines.append(f"msExchHideFromAddressLists: {'TRUE' if hidden else 'FALSE'}")
    if rtype is not None:
        lines.append(f"msExchRecipientTypeDetails: {rtype}")
    if objguid:
        lines.append(f"objectGUID:: {guid(uid)}")
    lines.append("uSNChanged: 100")
    return "\n".join(lines) + "\n"


def group(cn, members, *, gtype, mail=None):
    lines = [f"dn: cn={cn},ou=groups,{BASE}", "objectClass: groupOfNames",
             "objectClass: adGroup", f"cn: {cn}", f"groupType: {gtype}",
             f"objectGUID:: {guid(cn)}", "uSNChanged: 100"]
    if mail:
        lines.append(f"mail: {mail}")
    lines += [f"member: {m}" for m in members]
    return "\n".join(lines) + "\n"


NTDS_DN = "cn=NTDS Settings,ou=service," + BASE


def fixtures(users, big_group):
    out = [f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Corp\ndc: corp\n"]
    for ou in ("people", "groups", "service"):
        out.append(f"dn: ou={ou},{BASE}\nobjectClass: organizationalUnit\nou: {ou}\n")
    out.append(f"dn: {NTDS_DN}\nobjectClass: nTDSDSA\ncn: NTDS Settings\n"
               f"invocationId:: {guid('invocation-1')}\n")
    out.append(f"dn: {SERVICE_DN}\nobjectClass: person\ncn: sync\nsn: sync\n"
               f"userPassword: {SERVICE_PASSWORD}\n")
    dn = lambda uid: f"cn={uid},ou=people,{BASE}"
    out.append(person("alice", "alice@corp.example", "Alice", "Smith",
                      proxies=["smtp:a.smith@corp.example", "X500:/o=Corp/ou=x/cn=alice",
                               "SIP:alice@corp.example", "SMTP:alice@corp.example",
                               "smtp:alice@corp.example"]))
    out.append(person("bob", "bob@corp.example", "Bob", "Jones", uac=514))          # disabled
    out.append(person("carol", "carol@corp.example", "Carol", "White", hidden=True))
    out.append(person("info", "info@corp.example", "Info", "Desk", rtype=4))         # shared
    out.append(person("room1", "room1@corp.example", "Room", "One", rtype=16))       # room
    out.append(person("dave", "dave@corp.example", "Dave", "Brown", objguid=False))  # entryUUID
    out.append(person("nomail", None, "No", "Mail"))
    out.append(person("broken", "not-an-address", "Bro", "Ken"))
    for i in range(users):
        out.append(person(f"user{i:05d}", f"user{i:05d}@corp.example", f"First{i}", f"Last{i}"))
    out.append(group("sales", [dn("bob"), dn("carol")], gtype=-2147483646))          # security
    out.append(group("staff", [dn("alice"), f"cn=sales,ou=groups,{BASE}"],
                     gtype=-2147483646, mail="staff@corp.example"))                  # nested
    out.append(group("news", [dn("alice"), dn("dave")], gtype=8, mail="news@corp.example"))
    if big_group:
        out.append(group("everyone", [dn(f"user{i:05d}") for i in range(min(big_group, users))],
                         gtype=-2147483644, mail="everyone@corp.example"))
    return "\n".join(out)


def run(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def certificates(d):
    ca_key, ca, key, csr, cert = (os.path.join(d, n) for n in
                                  ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
         "-out", ca, "-days", "2", "-subj", "/CN=mailroster test CA"])
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=127.0.0.1"])
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", ext])


def start(d, users, big_group, ad):
    os.makedirs(os.path.join(d, "db"), exist_ok=True)
    if not os.path.exists(os.path.join(d, "server.pem")):
        certificates(d)
    conf = os.path.join(d, "slapd.conf")
    root_dse = ""
    if ad:  # look like AD: the rootDSE names the USN and the NTDS Settings entry
        root_dse = os.path.join(d, "rootdse.ldif")
        with open(root_dse, "w") as f:
            f.write(f"dn:\nhighestCommittedUSN: 5000\ndsServiceName: {NTDS_DN}\n")
        root_dse = "rootDSE " + root_dse
    with open(conf, "w") as f:
        f.write(f"""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include {HERE}/ad-lite.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
{root_dse}
database mdb
maxsize 4294967296
suffix "{BASE}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {d}/db
index objectClass eq
index uSNChanged eq
index mail,proxyAddresses pres,eq
limits users size.soft=1000 size.hard=1000 size.prtotal=unlimited
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
""")
    if not os.path.exists(os.path.join(d, "db", "data.mdb")):
        ldif = os.path.join(d, "fixtures.ldif")
        with open(ldif, "w") as f:
            f.write(fixtures(users, big_group))
        run(["/usr/sbin/slapadd", "-q", "-f", conf, "-l", ldif])
    ldap_port, ldaps_port = free_port(), free_port()
    log = open(os.path.join(d, "slapd.log"), "w")
    proc = subprocess.Popen([SLAPD, "-f", conf, "-h",
                             f"ldap://127.0.0.1:{ldap_port}/ ldaps://127.0.0.1:{ldaps_port}/",
                             "-d", "0"], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", ldap_port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                sys.exit("slapd exited: " + open(os.path.join(d, "slapd.log")).read())
            time.sleep(0.05)
    else:
        proc.kill()
        sys.exit("slapd did not start")
    info = {"pid": proc.pid, "ldap_port": ldap_port, "ldaps_port": ldaps_port,
            "base_dn": BASE, "bind_dn": SERVICE_DN, "password": SERVICE_PASSWORD,
            "admin_dn": ADMIN_DN, "admin_password": ADMIN_PASSWORD,
            "ca_file": os.path.join(d, "ca.pem"), "dir": d}
    with open(os.path.join(d, "info.json"), "w") as f:
        json.dump(info, f)
    print(json.dumps(info))


def stop(d):
    try:
        info = json.load(open(os.path.join(d, "info.json")))
        os.kill(info["pid"], 9)
    except (OSError, ValueError, KeyError):
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("action", choices=["start", "stop"])
    p.add_argument("dir")
    p.add_argument("--users", type=int, default=2500)
    p.add_argument("--big-group", type=int, default=1600)
    p.add_argument("--ad", action="store_true", help="look like Active Directory (USNs)")
    a = p.parse_args()
    d = os.path.abspath(a.dir)
    if a.action == "start":
        start(d, a.users, a.big_group, a.ad)
    else:
        stop(d)


if __name__ == "__main__":
    main()
