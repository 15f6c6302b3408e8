#!/usr/bin/env python3
"""A downstream mail server for the tests: the "company's mail server" behind mailroster.

It speaks enough ESMTP to be a callout target and a relay destination, on 127.0.0.1 only.
Behaviour is chosen per instance:
  --accept a,b      local parts that exist (RCPT 250); others get 550 5.1.1
  --accept-prefix p local parts beginning with p exist too (benchmarks: many addresses)
  --catch-all       every local part exists
  --mode normal     (default) as above
  --mode drop       accept the TCP connection and close it at once
  --mode 421        greet with 421 and close
  --mode slow       wait --delay seconds before every reply
  --mode tempfail   RCPT answers 450 4.2.0 for every address
  --smtputf8        offer SMTPUTF8 (RFC 6531); without it a non-ASCII address gets 553 5.6.7
  --dsn             offer DSN (RFC 3461); without it MAIL/RCPT parameters of DSN get 555
  --starttls C,K    offer STARTTLS (RFC 3207) with this certificate and key (PEM files)
  --delimiter +     sub-addressing (RFC 5233): alice+news exists when alice does
  --mode badtls     offer STARTTLS, answer it 220, then break the handshake
Each message received is written to --spool as NNNN.eml (the exact DATA bytes after
undoing dot-stuffing) and NNNN.json (envelope: from, to, MAIL parameters, each recipient's
RCPT parameters, tls); with --no-spool nothing is written (benchmarks). Prints "listening on PORT" when ready.
"""
import argparse
import asyncio
import json
import os
import ssl
import sys


class Session:
    def __init__(self, args, reader, writer, counter):
        self.args = args
        self.reader = reader
        self.writer = writer
        self.counter = counter
        self.tls = False

    async def reply(self, line):
        if self.args.mode == "slow":
            await asyncio.sleep(self.args.delay)
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()

    def exists(self, address):
        if self.args.catch_all:
            return True
        local = address.split("@", 1)[0].lower()
        if self.args.delimiter and local[1:].find(self.args.delimiter) >= 0:  # RFC 5233
            local = local[:1 + local[1:].find(self.args.delimiter)]
        if self.args.accept_prefix and local.startswith(self.args.accept_prefix):
            return True
        return local in self.args.accept

    async def run(self):
        if self.args.mode == "drop":
            self.writer.close()
            return
        if self.args.mode == "421":
            await self.reply("421 4.3.2 service not available")
            self.writer.close()
            return
        await self.reply("220 fake-mta.test ESMTP")
        mail_from, params, rcpts, rcpt_params = None, [], [], {}
        while True:
            line = await self.reader.readline()
            if not line:
                break
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd[:4].upper()
            if verb == "EHLO":
                offers_tls = (self.args.starttls or self.args.mode == "badtls") and not self.tls
                await self.reply("250-fake-mta.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n%s%s%s250 SIZE 100000000"
                                 % ("250-SMTPUTF8\r\n" if self.args.smtputf8 else "",
                                    "250-DSN\r\n" if self.args.dsn else "",
                                    "250-STARTTLS\r\n" if offers_tls else ""))
            elif verb == "STAR" and cmd.upper() == "STARTTLS":
                await self.reply("220 2.0.0 ready to start TLS")
                if self.args.mode == "badtls":
                    self.writer.write(b"this is not a TLS handshake\r\n")
                    await self.writer.drain()
                    break
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(*self.args.starttls.split(","))
                await self.writer.start_tls(context)
                self.tls = True
                mail_from, params, rcpts = None, [], []
            elif verb == "HELO":
                await self.reply("250 fake-mta.test")
            elif verb == "MAIL":
                words = cmd[10:].strip().split(" ")
                mail_from, params, rcpts = words[0].strip("<>"), [w.upper() for w in words[1:] if w], []
                rcpt_params = {}
                if not self.args.dsn and any(p.split("=")[0] in ("RET", "ENVID") for p in params):
                    await self.reply("555 5.5.4 unsupported parameter")
                    continue
                if not mail_from.isascii() and not (self.args.smtputf8 and "SMTPUTF8" in params):
                    await self.reply("553 5.6.7 non-ASCII address without SMTPUTF8")
                    continue
                await self.reply("250 2.1.0 ok")
            elif verb == "RCPT":
                words = cmd[8:].strip().split(" ")
                addr = words[0].strip("<>")
                if words[1:] and not self.args.dsn:
                    await self.reply("555 5.5.4 unsupported parameter")
                elif not addr.isascii() and not (self.args.smtputf8 and "SMTPUTF8" in params):
                    await self.reply("553 5.6.7 non-ASCII address without SMTPUTF8")
                elif self.args.mode == "tempfail":
                    await self.reply("450 4.2.0 mailbox busy")
                elif self.exists(addr):
                    rcpts.append(addr)
                    rcpt_params[addr] = [w for w in words[1:] if w]
                    await self.reply("250 2.1.5 ok")
                else:
                    await self.reply("550 5.1.1 <%s>: user unknown" % addr)
            elif verb == "DATA":
                if not rcpts:
                    await self.reply("554 5.5.1 no valid recipients")
                    continue
                await self.reply("354 go ahead")
                data = bytearray()
                while True:
                    l = await self.reader.readline()
                    if not l:
                        return
                    if l == b".\r\n":
                        break
                    if l.startswith(b"."):
                        l = l[1:]
                    data += l
                n = next(self.counter)
                if self.args.no_spool:
                    await self.reply("250 2.0.0 queued as FAKE%04d" % n)
                    mail_from, rcpts = None, []
                    continue
                base = os.path.join(self.args.spool, "%04d" % n)
                # Both by rename, the envelope first: whoever sees NNNN.eml (the tests poll
                # for them) finds both whole, and NNNN.json is never seen half written.
                with open(base + ".json.part", "w") as f:
                    json.dump({"from": mail_from, "to": rcpts, "params": params,
                               "rcpt_params": rcpt_params, "tls": self.tls}, f)
                os.rename(base + ".json.part", base + ".json")
                with open(base + ".eml.part", "wb") as f:
                    f.write(bytes(data))
                os.rename(base + ".eml.part", base + ".eml")
                await self.reply("250 2.0.0 queued as FAKE%04d" % n)
                mail_from, rcpts = None, []
            elif verb == "RSET":
                mail_from, rcpts = None, []
                await self.reply("250 2.0.0 ok")
            elif verb == "NOOP":
                await self.reply("250 2.0.0 ok")
            elif verb == "QUIT":
                await self.reply("221 2.0.0 bye")
                break
            else:
                await self.reply("502 5.5.2 unknown command")
        self.writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--accept", default="")
    p.add_argument("--accept-prefix", default="")
    p.add_argument("--catch-all", action="store_true")
    p.add_argument("--mode", default="normal")
    p.add_argument("--delay", type=float, default=5.0)
    p.add_argument("--spool", default=".")
    p.add_argument("--no-spool", action="store_true")
    p.add_argument("--smtputf8", action="store_true")
    p.add_argument("--dsn", action="store_true")
    p.add_argument("--starttls", default="")
    p.add_argument("--delimiter", default="")  # sub-addressing: alice+news is alice
    args = p.parse_args()
    args.accept = {a.strip().lower() for a in args.accept.split(",") if a.strip()}
    os.makedirs(args.spool, exist_ok=True)

    def counter():
        n = 0
        while True:
            n += 1
            yield n

    numbers = counter()

    async def handle(reader, writer):
        try:
            await Session(args, reader, writer, numbers).run()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass

    server = await asyncio.start_server(handle, "127.0.0.1", args.port)
    port = server.sockets[0].getsockname()[1]
    print("listening on %d" % port, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
