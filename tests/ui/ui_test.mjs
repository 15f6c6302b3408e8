// The web UI in a real headless Chromium (Debian's `chromium`, driven by playwright-core):
// log in, page and search the users, open one (names, role, aliases, removal asked twice),
// create a user from a discovered address through the Select menu, mark one invalid,
// add one as an alias, import a CSV through its preview, Search Now on Azure AD (against the
// local Graph server), both plans paged; check domains' mail servers, and as an operator add a
// domain and move its mail; the company's contacts, logins and relay networks; an end user's
// own password; no horizontal scrolling at 1280 and
// 390 px; screenshots saved as test artifacts.
//
//   node tests/ui/ui_test.mjs --binary build/mailroster --artifacts build/ui-artifacts
import { chromium } from "playwright-core";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import assert from "node:assert/strict";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const binary = path.resolve(arg("--binary", "build/mailroster"));
const artifacts = path.resolve(arg("--artifacts", "build/ui-artifacts"));
fs.mkdirSync(artifacts, { recursive: true });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailroster-ui-"));
// The database: a SQLite file, or with --postgres FILE (tests/postgres/pg_fixture.py's) a schema
// of its own on that PostgreSQL server.
const postgres = arg("--postgres", null);
let db = path.join(dir, "state.db");
if (postgres) {
  const conninfo = JSON.parse(fs.readFileSync(postgres, "utf8")).conninfo;
  const schema = `ui_${process.pid}_${Date.now()}`;
  execFileSync("psql", ["-q", conninfo, "-c", `CREATE SCHEMA ${schema}`]);
  db = `${conninfo} options='-c search_path=${schema}'`;
}
const config = path.join(dir, "c.toml");
fs.writeFileSync(config, `[database]\n${postgres ? "url" : "path"} = "${db}"\n` +
  `[secrets]\nkey_file = "${path.join(dir, "secrets.key")}"\n[admin]\nlisten = "127.0.0.1:0"\n` +
  `[smtp]\ninbound_listen = "127.0.0.1:0"\n[outbound]\nlisten = "127.0.0.1:0"\n`);
// SQL behind mailroster's back, as text both databases read alike.
const sql = (text) => postgres
  ? execFileSync("psql", ["-q", "-v", "ON_ERROR_STOP=1", db, "-c", text])
  : execFileSync("python3", ["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); " +
      "c.execute(sys.argv[2]); c.commit()", db, text]);
const PASSWORD = "correct horse battery";
const cli = (...args) => execFileSync(binary, ["--config", config, ...args], { encoding: "utf8" });
const cliIn = (input, ...args) => execFileSync(binary, ["--config", config, ...args], { input, encoding: "utf8" });

// The world: a company, users, an administrator, addresses the mail flow discovered.
cli("company", "add", "acme");
cli("domain", "add", "acme.example", "--company", "acme", "--destination", "127.0.0.1:25");
cli("user", "add", "alice@acme.example", "--first-name", "Alice", "--surname", "Smith");
// More users than one page holds (100).
fs.writeFileSync(path.join(dir, "members.csv"), "email,first_name,surname\n" +
  Array.from({ length: 150 }, (_, i) => `member${String(i).padStart(3, "0")}@acme.example,Mem,Ber${i}\n`).join(""));
cli("import", "csv", path.join(dir, "members.csv"), "--company", "acme");
cliIn(PASSWORD + "\n", "login", "add", "admin@acme.example", "--company", "acme");
cliIn(PASSWORD + "\n", "login", "add", "alice@acme.example", "--role", "end_user");
// Discovered now (serve's maintenance would expire ones discovered weeks ago).
const now = Math.floor(Date.now() / 1000);
sql("INSERT INTO discovered_addresses(company_id, domain_id, address, address_key, first_seen, " +
  `discovered_at) SELECT d.company_id, d.id, a.address, a.address, ${now}, ${now} FROM domains d, (` +
  // And 120 more, so that the list is longer than a page (100).
  ["newbie", "spammer", "a.smith", "other",
    ...Array.from({ length: 120 }, (_, i) => `zz-found-${String(i).padStart(3, "0")}`)]
    .map((l) => `SELECT '${l}@acme.example' AS address`)
    .join(" UNION ALL ") + ") a WHERE d.name = 'acme.example'");
// other@ looks like an alias of alice's (as alias detection would say with auto-add off).
sql("UPDATE discovered_addresses SET suggested_alias_of = (SELECT id FROM users WHERE " +
  "address = 'alice@acme.example') WHERE address = 'other@acme.example'");

// Azure AD: the local Graph server of the integration tests, its users in corp.example.
cli("domain", "add", "corp.example", "--company", "acme", "--destination", "127.0.0.1:25");
const here = path.dirname(new URL(import.meta.url).pathname);
// What a started process writes that the pattern finds (its first group), within 10 s.
const announced = (proc, stream, pattern, what) => new Promise((resolve, reject) => {
  let out = "";
  const timer = setTimeout(() => reject(new Error(what + " did not start: " + out)), 10000);
  proc[stream].on("data", (d) => {
    out += d;
    const m = out.match(pattern);
    if (m) { clearTimeout(timer); resolve(m[1]); }
  });
});
const graph = spawn("python3", [path.join(here, "..", "graph", "fake_graph.py"), "--users", "150"],
  { stdio: ["ignore", "pipe", "inherit"] });
const graphUrl = `http://127.0.0.1:${await announced(graph, "stdout", /PORT (\d+)/, "fake_graph.py")}`;
// A company mail server that says yes to any address (catch-all) for catchall.example:
// serve finds that out at the first callout, and the discovery page says why its addresses
// are never counted.
const mta = spawn("python3", [path.join(here, "..", "integration", "fake_mta.py"), "--catch-all",
  "--spool", path.join(dir, "spool")], { stdio: ["ignore", "pipe", "inherit"] });
const mtaPort = await announced(mta, "stdout", /listening on (\d+)/, "fake_mta.py");
cli("domain", "add", "catchall.example", "--company", "acme", "--destination", `127.0.0.1:${mtaPort}`);
// The same server takes the password links serve mails ([reports] relay).
fs.appendFileSync(config, `[reports]\nrelay = "127.0.0.1:${mtaPort}"\n`);
// A domain whose mail server is down (nothing listens on port 1), and an operator.
cli("domain", "add", "down.example", "--company", "acme", "--destination", "127.0.0.1:1");
cliIn(PASSWORD + "\n", "operator", "add", "ops@example.net");
cli("discovery", "set", "--company", "acme", "enabled=true");

const serve = spawn(binary, ["--config", config, "serve"], { stdio: ["ignore", "ignore", "pipe"] });
const serveLog = (pattern) => announced(serve, "stderr", pattern, "serve");
// What serve logs is kept with the screenshots, and a serve that ends before the test is a failure.
const serveLogFile = fs.createWriteStream(path.join(artifacts, "serve.log"));
serve.stderr.on("data", (d) => serveLogFile.write(d));
let failed = false, stopping = false;
serve.on("exit", (code, signal) => {
  if (stopping) return;
  failed = true;
  console.log(`FAIL serve ended during the test (exit code ${code}, signal ${signal}): see ${artifacts}/serve.log`);
});
const [port, smtpPort] = (await Promise.all([serveLog(/admin HTTP listening on 127\.0\.0\.1:(\d+)/),
  serveLog(/inbound SMTP listening on 127\.0\.0\.1:(\d+)/)])).map(Number);
const swaksToCatchAll = () => execFileSync("swaks", ["--server", `127.0.0.1:${smtpPort}`,
  "--to", "anyone@catchall.example", "--from", "bob@example.org", "--helo", "client.example.org"],
  { stdio: "ignore" });
swaksToCatchAll();
const base = `http://127.0.0.1:${port}`;
const executablePath = execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim();
const browser = await chromium.launch({ executablePath, headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
const step = async (name, fn) => {
  const t = Date.now();
  try { await fn(); console.log(`ok   ${name} (${Date.now() - t} ms)`); } catch (e) { failed = true; console.log("FAIL " + name + "\n" + e.stack); }
};

// The login form filled in on page, until heading is shown.
// Saves a sync's form and waits for this save's own "saved" (an earlier one may still show).
const saveSync = async (page, form) => {
  await page.evaluate(() => { document.querySelector("#message").textContent = ""; });
  await form.locator("button:has-text('Save')").click();
  await page.waitForSelector("#message:has-text('sync settings saved')");
};
const logIn = async (page, email, password, heading) => {
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("button:has-text('Log in')");
  await page.waitForSelector(`h1:has-text('${heading}')`);
};
// The password link in the newest of the `after`+1 mails the relay got for address, within 10 s.
const mailedLink = async (address, after = 0) => {
  const spool = path.join(dir, "spool");
  for (let i = 0; i < 200; i++) {
    // NNNN.eml appears last (by rename), its envelope NNNN.json whole before it.
    const mails = (fs.existsSync(spool) ? fs.readdirSync(spool) : []).filter((f) => f.endsWith(".eml")).sort()
      .filter((f) => JSON.parse(fs.readFileSync(path.join(spool, f.replace(/eml$/, "json")), "utf8")).to.includes(address));
    if (mails.length > after) {
      const text = fs.readFileSync(path.join(spool, mails[after]), "utf8");
      return text.match(/^(http:\/\/127\.0\.0\.1:\d+\/#\/reset\/[\w-]+)\r$/m)[1];
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no mail to " + address);
};
// A new page at 1280 px, logged in as email.
const loggedIn = async (email, heading) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(base + "/");
  await logIn(page, email, PASSWORD, heading);
  return page;
};

try {
  for (const width of [1280, 390]) {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    const noHorizontalScroll = async (what) => {
      const [sw, iw] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      assert.ok(sw <= iw, `${what} at ${width}px scrolls sideways: ${sw} > ${iw}`);
      await page.screenshot({ path: path.join(artifacts, `${what}-${width}.png`), fullPage: true });
    };
    await step(`login at ${width}px`, async () => {
      await page.goto(base + "/");
      await page.fill("input[name=email]", "admin@acme.example");
      await page.fill("input[name=password]", "wrong password");
      await page.click("text=Log in >> nth=-1");
      await page.waitForSelector("#login-error:has-text('wrong email or password')");
      await logIn(page, "admin@acme.example", PASSWORD, "Users");
      await noHorizontalScroll("users");
      assert.ok(await page.isHidden("#nav-gateway"), "the Gateway page is for operators");
    });
    if (width === 390) {
      await step("every page fits a phone", async () => {
        for (const [view, title] of [["discovery", "SMTP Discovery"], ["invalid", "Marked Invalid"],
          ["settings", "SMTP Discovery settings"], ["import", "Import Users"], ["audit", "Audit"],
          ["mail-log", "Mail log"],
          ["domains", "Domains"], ["company", "Company acme"]]) {
          await page.goto(base + "/#/" + view);
          await page.waitForSelector(`h1:has-text('${title}')`);
          // The company's licensed users come after the page: its table is in the check too.
          if (view === "company") await page.waitForSelector("#usage [data-usage-day]");
          await noHorizontalScroll(view);
        }
        await page.goto(base + "/#/users");
        await page.click("a:has-text('alice@acme.example')");
        await page.waitForSelector("h1:has-text('alice@acme.example')");
        await noHorizontalScroll("user");
      });
      await page.close();
      continue;
    }
    await step("page through the users and find one by name", async () => {
      const rows = () => page.$$eval("tbody tr", (trs) => trs.length);
      await page.waitForSelector("#page-info:text-is('1–100 of 151')");
      assert.equal(await rows(), 100);
      assert.ok(await page.isDisabled("#previous-page"), "no page before the first");
      await page.click("#next-page");
      await page.waitForSelector("#page-info:text-is('101–151 of 151')");
      assert.equal(await rows(), 51);
      assert.ok(await page.isDisabled("#next-page"), "no page after the last");
      await page.waitForSelector("td:has-text('member149@acme.example')");
      await page.click("#previous-page");
      await page.waitForSelector("#page-info:text-is('1–100 of 151')");
      // What a search finds is paged and counted as the whole list is.
      await page.fill("input[aria-label='search users']", "MEMBER");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('1–100 of 150 matching (151 users)')");
      await page.click("#next-page");
      await page.waitForSelector("#page-info:text-is('101–150 of 150 matching (151 users)')");
      assert.equal(await rows(), 50);
      await page.fill("input[aria-label='search users']", "member042");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('1–1 of 1 matching (151 users)')");
      await page.waitForSelector("td:has-text('member042@acme.example')");
      assert.equal(await rows(), 1);
      await page.fill("input[aria-label='search users']", "Smith");  // by name
      await page.click("#find-users button");
      await page.waitForSelector("td:has-text('alice@acme.example')");
      assert.equal(await rows(), 1);
      // By one of its aliases: its user.
      cli("alias", "add", "smithy@acme.example", "--user", "alice@acme.example");
      await page.fill("input[aria-label='search users']", "SMITHY@");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('1–1 of 1 matching (151 users)')");
      await page.waitForSelector("td:has-text('alice@acme.example')");
      cli("alias", "remove", "smithy@acme.example");
      await page.fill("input[aria-label='search users']", "nobody-like-this");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('no user matches')");
      await page.fill("input[aria-label='search users']", "");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('1–100 of 151')");
      // By role: alice is the only end user; the roles are named, not keys.
      await page.selectOption("select[aria-label='role filter']", "end_user");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('1–1 of 1 matching (151 users)')");
      await page.waitForSelector("td:has-text('alice@acme.example')");
      assert.equal(await page.textContent("td[data-label=Role]"), "end user");
      await page.selectOption("select[aria-label='role filter']", "functional");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('no user matches')");
      await page.selectOption("select[aria-label='role filter']", "");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('1–100 of 151')");
      // By source: alice was added by hand, the members came from a CSV file.
      await page.selectOption("select[aria-label='source filter']", "manual");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('1–1 of 1 matching (151 users)')");
      assert.equal(await page.textContent("td[data-label=Source]"), "added by hand");
      await page.selectOption("select[aria-label='source filter']", "csv");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('1–100 of 150 matching (151 users)')");
      await page.selectOption("select[aria-label='source filter']", "");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('1–100 of 151')");
    });
    await step("open a user: names, role, aliases, and removal asked twice", async () => {
      await page.goto(base + "/#/users");
      await page.fill("input[aria-label='search users']", "member042");
      await page.click("#find-users button");
      await page.click("a:has-text('member042@acme.example')");
      await page.waitForSelector("h1:has-text('member042@acme.example')");
      await page.fill("#user-edit input[name=first_name]", "Forty");
      await page.selectOption("#user-edit select[name=role]", "end_user");
      await page.click("#user-edit button");
      await page.waitForSelector("#message:has-text('saved')");
      const shown = () => JSON.parse(cli("user", "show", "member042@acme.example", "--json"));
      assert.deepEqual([shown().first_name, shown().role], ["Forty", "end_user"]);
      await page.fill("input[aria-label='new alias']", "m42@acme.example");
      await page.click("#add-alias button");
      await page.waitForSelector("td:has-text('m42@acme.example')");
      assert.deepEqual(shown().aliases, ["m42@acme.example"]);
      await page.fill("input[aria-label='new alias']", "alice@acme.example");  // another user's
      await page.click("#add-alias button");
      await page.waitForSelector("#message.error");
      await noHorizontalScroll("user");
      await page.click("[data-unalias='m42@acme.example']");
      await page.waitForSelector("td:has-text('m42@acme.example')", { state: "detached" });
      assert.deepEqual(shown().aliases, []);
      await page.click("#remove-user");
      await page.waitForSelector("#remove-row:has-text('Remove member042@acme.example?')");
      await page.click("[data-confirm-no]");  // nothing removed
      await page.waitForSelector("#remove-user");
      assert.equal(shown().address, "member042@acme.example");
      await page.click("#remove-user");
      await page.click("[data-confirm-yes]");
      await page.waitForSelector("#message:has-text('user removed')");
      await page.waitForSelector("h1:has-text('Users')");
      assert.doesNotMatch(cli("user", "list", "--company", "acme"), /member042@/);
    });
    await step("several users at once: a role for them all, their removal asked twice, past the deletion guard thrice", async () => {
      await page.goto(base + "/#/users");
      await page.fill("input[aria-label='search users']", "member01");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('1–10 of 10 matching (150 users)')");
      const role = (a) => JSON.parse(cli("user", "show", a, "--json")).role;
      await page.click("#apply-users");  // nothing selected: said so, nothing done
      await page.waitForSelector("#message.error:has-text('select at least one user')");
      await page.check("input[aria-label='select member010@acme.example']");
      await page.check("input[aria-label='select member011@acme.example']");
      await page.selectOption("#user-action", "role:end_user");
      await page.click("#apply-users");
      await page.waitForSelector("#message:has-text('2 user(s) changed')");
      assert.deepEqual([role("member010@acme.example"), role("member011@acme.example"),
        role("member012@acme.example")], ["end_user", "end_user", "silent_user"]);
      // All on this page at once, and none again.
      const ticked = () => page.$$eval("input[data-user-address]:checked", (boxes) => boxes.length);
      await page.check("[data-select-all]");
      assert.equal(await ticked(), 10);
      await page.uncheck("[data-select-all]");
      assert.equal(await ticked(), 0);
      await page.check("input[aria-label='select member012@acme.example']");
      await page.selectOption("#user-action", "remove");
      await page.click("#apply-users");
      await page.waitForSelector("#users-confirm:has-text('Remove 1 user(s) and their aliases?')");
      await page.click("#users-confirm [data-confirm-no]");  // nothing removed
      assert.equal(role("member012@acme.example"), "silent_user");
      await page.click("#apply-users");
      await page.click("#users-confirm [data-confirm-yes]");
      await page.waitForSelector("#message:has-text('1 user(s) removed')");
      await page.waitForSelector("#page-info:text-is('1–9 of 9 matching (149 users)')");
      assert.doesNotMatch(cli("user", "list", "--company", "acme"), /member012@/);
      // Fifty of 149 at once is past the deletion guard (10 %): a third question, then forced.
      await page.fill("input[aria-label='search users']", "member1");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('1–50 of 50 matching (149 users)')");
      await page.check("[data-select-all]");
      await page.selectOption("#user-action", "remove");
      await page.click("#apply-users");
      await page.click("#users-confirm [data-confirm-yes]");
      await page.waitForSelector("#users-confirm:has-text('Removing 50 users is more than the deletion guard allows')");
      assert.match(cli("user", "list", "--company", "acme"), /member149@/, "nothing removed yet");
      await page.click("#users-confirm [data-confirm-no]");
      assert.equal(JSON.parse(cli("user", "list", "--company", "acme", "--json")).length, 149);
      await page.click("#apply-users");
      await page.click("#users-confirm [data-confirm-yes]");
      await page.click("#users-confirm [data-confirm-yes]:has-text('Yes, remove them all')");
      await page.waitForSelector("#message:has-text('50 user(s) removed')");
      assert.equal(JSON.parse(cli("user", "list", "--company", "acme", "--json")).length, 99);
      // Back as they were, for the steps below.
      const back = path.join(dir, "members-1xx.csv");
      fs.writeFileSync(back, "email,first_name,surname\n" + Array.from({ length: 50 }, (_, i) =>
        `member${i + 100}@acme.example,Mem,Ber${i + 100}\n`).join(""));
      cli("import", "csv", back, "--company", "acme");
      await page.fill("input[aria-label='search users']", "");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:has-text('of 149')");
      await noHorizontalScroll("users");
    });
    await step("users' last mail, and those with none for months", async () => {
      // As the SMTP path records it (one delivered 100 days ago, one yesterday), written here.
      const day = 86400;
      for (const [who, ago] of [["member005", 100], ["member006", 1]]) {
        sql(`INSERT INTO user_activity(user_id, last_mail_at) SELECT id, ${now - ago * day} FROM users ` +
          `WHERE address = '${who}@acme.example'`);
      }
      const date = (ago) => new Date((now - ago * day) * 1000).toISOString().slice(0, 10);
      await page.goto(base + "/#/users");
      await page.fill("input[aria-label='search users']", "member00");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('1–10 of 10 matching (149 users)')");
      const lastMail = (a) => page.textContent(`tr:has(a:text-is('${a}')) td[data-label='Last mail']`);
      assert.equal(await lastMail("member005@acme.example"), date(100));
      assert.equal(await lastMail("member006@acme.example"), date(1));
      assert.equal(await lastMail("member007@acme.example"), "none yet");
      // No mail for 90 days: member005 only (the others are new, and counted from then).
      await page.fill("input[aria-label='search users']", "");
      await page.selectOption("select[aria-label='last mail filter']", "90");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('1–1 of 1 matching (149 users)')");
      await page.waitForSelector("a:text-is('member005@acme.example')");
      await page.selectOption("select[aria-label='last mail filter']", "");
      await page.click("#find-users button");
      await page.waitForSelector("#page-info:text-is('1–100 of 149')");
      await page.click("a:text-is('member006@acme.example')");
      await page.waitForSelector(`p:has-text('last mail ${date(1)}')`);
    });
    await step("create a user from a discovered address through the Select menu", async () => {
      await page.goto(base + "/#/discovery");
      await page.waitForSelector("text=newbie@acme.example");
      await page.waitForSelector("[data-catch-all='catchall.example']:has-text('accepts any address')");
      await noHorizontalScroll("discovery");
      // A page at a time: the rest are a click away, and back.
      const pager = page.locator("[data-pager=discovered]");
      await pager.locator(".page-info:has-text('1–100 of 124')").waitFor();
      await pager.locator("[data-page=next]").click();
      await pager.locator(".page-info:has-text('101–124 of 124')").waitFor();
      await page.waitForSelector("text=zz-found-119@acme.example");
      assert.ok(await pager.locator("[data-page=next]").isDisabled());
      await pager.locator("[data-page=previous]").click();
      await page.waitForSelector("text=newbie@acme.example");
      // Found by a part of the address, then the whole list again.
      await page.fill("input[aria-label='search discovered addresses']", "ZZ-FOUND-11");
      await page.click("#find-discovered button");
      await pager.locator(".page-info:text-is('1–10 of 10')").waitFor();
      await page.fill("input[aria-label='search discovered addresses']", "");
      await page.click("#find-discovered button");
      await pager.locator(".page-info:has-text('1–100 of 124')").waitFor();
      await page.waitForSelector("text=newbie@acme.example");
      // All on this page (100) at once, and none again.
      const ticked = () => page.$$eval("input[data-address]:checked", (boxes) => boxes.length);
      await page.check("[data-select-all]");
      assert.equal(await ticked(), 100);
      await page.uncheck("[data-select-all]");
      assert.equal(await ticked(), 0);
      await page.check("input[aria-label='select newbie@acme.example']");
      await page.fill("input[aria-label='first name of newbie@acme.example']", "New");
      await page.fill("input[aria-label='surname of newbie@acme.example']", "Bie");
      await page.selectOption("#action", "create_user");
      await page.click("#apply");
      await page.waitForSelector("#message:has-text('1 address(es) handled')");
      await page.waitForSelector("text=newbie@acme.example", { state: "detached" });
      const users = JSON.parse(cli("user", "list", "--company", "acme", "--json"));
      const u = users.find((x) => x.address === "newbie@acme.example");
      assert.equal(u.first_name, "New");
      assert.equal(u.surname, "Bie");
    });
    await step("the list says when each expires, and which looks like an alias of whom", async () => {
      const row = page.locator("tr:has(input[aria-label='select other@acme.example'])");
      const settings = JSON.parse(cli("discovery", "settings", "--company", "acme", "--json"));
      const discovered = new Date(now * 1000);
      const expires = new Date(discovered.getTime() + settings.notification_weeks * 7 * 86400 * 1000);
      await row.locator(`td[data-label=Expires]:has-text('${expires.toISOString().slice(0, 10)}')`).waitFor();
      await row.locator("[data-suggested]:has-text('alias of alice@acme.example?')").click();
      assert.ok(await row.locator("input[type=checkbox]").isChecked());
      assert.equal(await page.inputValue("#alias-of"), "alice@acme.example");
      await page.click("#apply");
      await page.waitForSelector("text=other@acme.example", { state: "detached" });
      assert.ok(JSON.parse(cli("user", "show", "alice@acme.example", "--json")).aliases.includes("other@acme.example"));
    });
    await step("mark one invalid", async () => {
      await page.check("input[aria-label='select spammer@acme.example']");
      await page.selectOption("#action", "mark_invalid");
      await page.click("#apply");
      await page.waitForSelector("text=spammer@acme.example", { state: "detached" });
      await page.goto(base + "/#/invalid");
      await page.waitForSelector("td:has-text('spammer@acme.example')");
      await noHorizontalScroll("invalid");
    });
    await step("fix an invalid address: a user with names and the role chosen", async () => {
      cli("invalid", "add", "ops.desk@acme.example", "--reason", "bounced");
      await page.goto(base + "/#/users");
      await page.goto(base + "/#/invalid");
      // The list drawn again (the one shown before lacks the address the CLI just marked).
      await page.waitForSelector("td:text-is('ops.desk@acme.example')");
      // Found by a part of the reason (or of the address), then the whole list again.
      await page.fill("input[aria-label='search invalid addresses']", "BOUNCED");
      await page.click("#find-invalid button");
      await page.locator("[data-pager=invalid] .page-info:text-is('1–1 of 1')").waitFor();
      await page.waitForSelector("td:text-is('ops.desk@acme.example')");
      await page.fill("input[aria-label='search invalid addresses']", "");
      await page.click("#find-invalid button");
      await page.waitForSelector("td:text-is('spammer@acme.example')");
      const row = page.locator("tr:has(td:text-is('ops.desk@acme.example'))");
      await row.locator("td:has-text(' UTC')").waitFor();  // when, as every page writes it
      const form = page.locator("tr[data-create-for='ops.desk@acme.example'] form");
      await row.locator("button:has-text('Create user')").click();
      // The role discovery gives new users is chosen unless another is.
      const settings = JSON.parse(cli("discovery", "settings", "--company", "acme", "--json"));
      assert.equal(await form.locator("select[aria-label='role of ops.desk@acme.example']").inputValue(),
        settings.default_role);
      await form.locator("button:has-text('Cancel')").click();  // nothing made
      await form.waitFor({ state: "detached" });
      await row.locator("button:has-text('Create user')").click();
      await page.fill("input[aria-label='first name of ops.desk@acme.example']", "Ops");
      await page.fill("input[aria-label='surname of ops.desk@acme.example']", "Desk");
      await page.selectOption("select[aria-label='role of ops.desk@acme.example']", "functional");
      await form.locator("button:has-text('Create')").click();
      await page.waitForSelector("td:text-is('ops.desk@acme.example')", { state: "detached" });
      const user = JSON.parse(cli("user", "show", "ops.desk@acme.example", "--json"));
      assert.deepEqual([user.first_name, user.surname, user.role], ["Ops", "Desk", "functional"]);
      assert.ok(!cli("invalid", "list", "--company", "acme").includes("ops.desk@acme.example"));
    });
    await step("add one as an alias with type-ahead on users", async () => {
      await page.goto(base + "/#/discovery");
      await page.waitForSelector("text=a.smith@acme.example");
      await page.fill("#alias-of", "ali");  // asks the server for matching users as one types
      await page.waitForSelector("#user-list option[value='alice@acme.example']", { state: "attached" });
      const options = await page.$$eval("#user-list option", (os) => os.map((o) => o.value));
      assert.deepEqual(options, ["alice@acme.example"], "type-ahead lists the matching users");
      await page.check("input[aria-label='select a.smith@acme.example']");
      await page.fill("#alias-of", "alice@acme.example");
      await page.click("#apply");
      await page.waitForSelector("text=a.smith@acme.example", { state: "detached" });
      const aliases = cli("alias", "list", "--company", "acme");
      assert.match(aliases, /a\.smith@acme\.example/);
    });
    await step("import a CSV through the preview, paged, with line-numbered errors", async () => {
      const csv = path.join(dir, "users.csv");
      let text = "email,first_name,surname\nimported@acme.example,Im,Ported\nbad address,,\n";
      for (let i = 0; i < 149; i++) text += `bulk${String(i).padStart(3, "0")}@acme.example,B,${i}\n`;
      for (let i = 0; i < 100; i++) text += `broken${i}\n`;  // lines 153 to 252
      fs.writeFileSync(csv, text);
      await page.goto(base + "/#/import");
      await page.setInputFiles("#csv", csv);
      await page.click("#preview");
      await page.waitForSelector("#csv-result .plan-errors:has-text('line 3')");
      await page.waitForSelector("#csv-result .plan-counts:has-text('150 to create')");
      await page.waitForSelector("#csv-result [data-page]:has-text('creates 1–100 of 150')");
      assert.equal(await page.$$eval("#csv-result [data-rows] tbody tr", (trs) => trs.length), 100);
      await noHorizontalScroll("import-preview");
      await page.click("#csv-result [data-next]");
      await page.waitForSelector("#csv-result [data-page]:has-text('creates 101–150 of 150')");
      assert.equal(await page.$$eval("#csv-result [data-rows] tbody tr", (trs) => trs.length), 50);
      await page.click("#csv-result [data-list=skips]");
      await page.waitForSelector("#csv-result [data-page]:has-text('no skips')");
      assert.equal(await page.$$eval("#csv-result .plan-errors li", (lis) => lis.length), 100);
      await page.click("#csv-result [data-more-errors]");
      await page.waitForSelector("#csv-result .plan-errors li:has-text('line 252')");
      assert.ok(await page.isHidden("#csv-result [data-more-errors]"));
      await page.check("#skip-invalid");
      await page.click("#apply-import");
      await page.waitForSelector("#message:has-text('150 created')");
      assert.match(cli("user", "list", "--company", "acme"), /imported@acme\.example/);
    });
    await step("a CSV import that deletes the users missing from the file asks before it deletes", async () => {
      await page.goto(base + "/#/import");
      // The members but the first 20: they, and any other user from a CSV file, are to go.
      const fewer = path.join(dir, "fewer-members.csv");
      fs.writeFileSync(fewer, "email,first_name,surname\n" + Array.from({ length: 130 }, (_, i) =>
        `member${String(i + 20).padStart(3, "0")}@acme.example,Mem,Ber${i + 20}\n`).join(""));
      const users = () => JSON.parse(cli("user", "list", "--company", "acme", "--json"));
      const before = users();
      const kept = new Set(fs.readFileSync(fewer, "utf8").split("\n").slice(1).map((l) => l.split(",")[0]));
      const going = before.filter((u) => u.source === "csv" && !kept.has(u.address)).length;
      const coming = [...kept].filter((a) => a && !before.some((u) => u.address === a)).length;
      const saved = path.join(dir, "before-delete.csv");
      cli("user", "export", "--company", "acme", "-o", saved);
      assert.ok(going >= 20 && going > before.length / 10, `${going} of ${before.length}: over the guard`);
      await page.check("#delete-missing");
      await page.setInputFiles("#csv", fewer);
      await page.click("#preview");
      await page.waitForSelector(`#csv-result .plan-counts:has-text('${going} to delete')`);
      assert.match(await page.textContent("#csv-result .plan-counts"), /deletion guard/);
      await page.click("#apply-import");
      await page.waitForSelector(`#csv-result [data-confirm]:has-text('This deletes ${going} users')`);
      await page.click("#csv-result [data-confirm-no]");
      assert.equal(users().length, before.length, "nothing deleted without the second word");
      await page.click("#apply-import");
      await page.click("#csv-result [data-confirm-yes]");
      await page.waitForSelector(`#message:has-text('imported: ${coming} created, 0 updated, ${going} deleted')`);
      assert.equal(users().length, before.length - going + coming);
      // As it was: the export taken before imports back, and what came goes again.
      await page.uncheck("#delete-missing");
      cli("import", "csv", saved, "--company", "acme", "--delete-missing", "--force");
      assert.deepEqual(users().map((u) => u.address).sort(), before.map((u) => u.address).sort());
    });
    await step("export the users as CSV; the file imports back as no change", async () => {
      await page.goto(base + "/#/users");
      const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-users")]);
      assert.equal(download.suggestedFilename(), "acme-users.csv");
      const file = path.join(dir, "export.csv");
      await download.saveAs(file);
      const text = fs.readFileSync(file, "utf8");
      assert.ok(text.startsWith("\uFEFFemail,first_name,surname,role,type,aliases\r\n"), text.slice(0, 80));
      assert.match(text, /\r\nimported@acme\.example,Im,Ported,/);
      assert.match(text, /\r\nalice@acme\.example,[^\r]*a\.smith@acme\.example/);  // the alias added above
      assert.equal(text.trimEnd().split("\r\n").length - 1,
        JSON.parse(cli("user", "list", "--company", "acme", "--json")).length);
      await page.goto(base + "/#/import");
      await page.setInputFiles("#csv", file);
      await page.click("#preview");
      await page.waitForSelector("#csv-result .plan-counts:has-text('0 to create')");
      assert.match(await page.textContent("#csv-result .plan-counts"), /0 to update/);
      assert.equal(await page.$("#csv-result .plan-notes"), null);  // nothing to say of the file
      // As a spreadsheet saves it where the comma is the decimal mark: the preview says so.
      const semi = path.join(dir, "semicolons.csv");
      fs.writeFileSync(semi, "email;first_name;department\r\nsemi@acme.example;Semi;IT\r\n");
      await page.setInputFiles("#csv", semi);
      await page.click("#preview");
      await page.waitForSelector("#csv-result .plan-notes");
      assert.equal(await page.textContent("#csv-result .plan-notes"),
        "columns separated by semicolons; unknown column 'department' ignored");
      await page.waitForSelector("#csv-result .plan-counts:has-text('1 to create')");
    });
    await step("Search Now on Azure AD shows its plan a page at a time", async () => {
      await page.goto(base + "/#/import");
      const form = page.locator("form[data-sync=azure]");
      for (const [name, value] of [["tenant_id", "contoso-tenant"], ["client_id", "mailroster-app"],
        ["login_url", graphUrl], ["graph_url", graphUrl], ["secret", "graph-secret"]]) {
        await form.locator(`input[name=${name}]`).fill(value);
      }
      await saveSync(page, form);
      await form.locator("[data-search]").click();
      // 150 generated users and a few named ones, in corp.example, which acme holds too.
      await form.locator("[data-page]:has-text('creates 1–100 of')").waitFor();
      const total = Number((await form.locator(".plan-counts").textContent()).match(/(\d+) to create/)[1]);
      assert.ok(total > 150, `${total} to create`);
      await noHorizontalScroll("sync-search");
      await form.locator("[data-next]").click();
      await form.locator(`[data-page]:has-text('creates 101–${Math.min(200, total)} of ${total}')`).waitFor();
      await form.locator("[data-previous]").click();
      await form.locator("[data-page]:has-text('creates 1–100 of')").waitFor();
      assert.ok(await form.locator("[data-run]").isVisible());
      assert.doesNotMatch(cli("user", "list", "--company", "acme"), /corp\.example/);  // nothing written
    });
    await step("choose what Azure AD sync includes and does, Sync, and see what it did", async () => {
      const form = page.locator("form[data-sync=azure]");
      const before = Number((await form.locator(".plan-counts").textContent()).match(/(\d+) to create/)[1]);
      // The seed's defaults: active users, functional accounts, create and update.
      assert.ok(await form.locator("input[name=include_active]").isChecked());
      assert.ok(!(await form.locator("input[name=include_disabled]").isChecked()));
      assert.equal(await form.locator("input[name=max_delete_count]").inputValue(), "500");
      assert.equal(await form.locator("input[name=max_delete_share]").inputValue(), "10");
      await form.locator("label:has-text('Disabled user accounts') input").check();
      await form.locator("label:has-text('Delete accounts no longer in the directory') input").check();
      await form.locator("select[name=default_role]").selectOption("end_user");
      await form.locator("input[name=max_delete_share]").fill("25");
      await saveSync(page, form);
      const options = JSON.parse(cli("sync", "azure", "status", "--company", "acme", "--json")).options;
      assert.equal(options.include_disabled, true);
      assert.equal(options.delete_removed, true);
      assert.equal(options.default_role, "end_user");
      assert.equal(options.max_delete_share, 0.25);
      assert.equal(options.include_active, true);
      await form.locator("[data-test]").click();
      await page.waitForSelector(`#message.ok:has-text('connected: Microsoft Graph at ${graphUrl}')`);
      await form.locator("[data-status]:has-text('Last success: never')").waitFor();
      await form.locator("[data-status]:has-text('Next run reads the whole directory')").waitFor();
      // Bob's account is disabled: now included.
      await form.locator("[data-search]").click();
      await form.locator(`.plan-counts:has-text('${before + 1} to create')`).waitFor();
      await form.locator("[data-run]").click();
      await page.waitForSelector(`#message:has-text('synced: ${before + 1} created')`);
      await form.locator(`[data-status]:has-text('(${before + 1} created, 0 updated, 0 deleted')`).waitFor();
      await form.locator("[data-status]:has-text('Next run reads changes only')").waitFor();
      assert.equal(await form.locator(".plan-counts").count(), 0, "the applied plan is gone");
      const bob = JSON.parse(cli("user", "list", "--company", "acme", "--search", "bob@corp.example", "--json"));
      assert.equal(bob.length, 1);
      assert.equal(bob[0].role, "end_user");
      await noHorizontalScroll("sync-options");
      // A daily sync turns SMTP Discovery off (the seed): the discovery pages say so.
      await form.locator("select[name=frequency_hours]").selectOption("24");
      await saveSync(page, form);
      for (const view of ["settings", "discovery"]) {
        await page.goto(base + "/#/" + view);
        await page.waitForSelector("[data-discovery-off]:has-text('while a directory sync runs every 24 hours')");
      }
      await page.goto(base + "/#/import");
      await page.locator("form[data-sync=azure] [data-status]:has-text('every 24 hours')").waitFor();
      await page.locator("form[data-sync=azure] select[name=frequency_hours]").selectOption("");
      await saveSync(page, page.locator("form[data-sync=azure]"));
      await page.goto(base + "/#/settings");
      await page.waitForSelector("h1:has-text('SMTP Discovery settings')");
      assert.equal(await page.locator("[data-discovery-off]").count(), 0);
      await page.goto(base + "/#/import");
      // The page shows the stored options when opened again.
      await page.reload();
      await page.locator("form[data-sync=azure] [data-status]:has-text('Last success: 2')").waitFor();
      assert.ok(await page.locator("form[data-sync=azure] input[name=include_disabled]").isChecked());
      assert.equal(await page.locator("form[data-sync=azure] select[name=default_role]").inputValue(), "end_user");
    });
    await step("a Sync over the deletion guard asks before it deletes", async () => {
      const form = page.locator("form[data-sync=azure]");
      const bob = () => JSON.parse(cli("user", "list", "--company", "acme", "--search", "bob@corp.example", "--json"));
      assert.equal(bob().length, 1);
      // The next run would read changes only; Search Now reads everything, and says so.
      await form.locator("[data-status]:has-text('Next run reads changes only')").waitFor();
      await form.locator("[data-search]").click();
      await form.locator(".plan-notes:has-text('read the whole directory')").waitFor();
      // Disabled accounts left out: Bob's is to be deleted; no deletion allowed at all.
      await form.locator("label:has-text('Disabled user accounts') input").uncheck();
      await form.locator("input[name=max_delete_count]").fill("0");
      await saveSync(page, form);
      await form.locator("[data-search]").click();
      await form.locator(".plan-counts:has-text('1 to delete')").waitFor();
      assert.match(await form.locator(".plan-counts").textContent(), /deletion guard/);
      await form.locator("[data-run]").click();
      await form.locator("[data-confirm]:has-text('This deletes 1 users')").waitFor();
      await form.locator("[data-confirm] [data-confirm-no]").click();
      assert.equal(bob().length, 1, "nothing deleted without the second word");
      await form.locator("[data-run]").click();
      await form.locator("[data-confirm] [data-confirm-yes]").click();
      await page.waitForSelector("#message:has-text('synced: 0 created, 0 updated, 1 deleted')");
      assert.equal(bob().length, 0);
      // As it was: Bob is back.
      await form.locator("label:has-text('Disabled user accounts') input").check();
      await form.locator("input[name=max_delete_count]").fill("500");
      await saveSync(page, form);
      await form.locator("[data-search]").click();
      await form.locator(".plan-counts:has-text('1 to create')").waitFor();
      await form.locator("[data-run]").click();
      await page.waitForSelector("#message:has-text('synced: 1 created')");
      assert.equal(bob().length, 1);
    });
    await step("Active Directory settings: security, certificate check, a filter set and cleared, Test", async () => {
      const form = page.locator("form[data-sync=ldap]");
      assert.equal(await form.locator("select[name=security]").inputValue(), "none");
      assert.ok(await form.locator("input[name=verify]").isChecked(), "certificates are checked by default");
      for (const [name, value] of [["host", "127.0.0.1"], ["port", "1"], ["bind_dn", "cn=sync,dc=acme,dc=example"],
        ["base_dn", "dc=acme,dc=example"], ["filter", "(department=IT)"], ["secret", "bind-password"]]) {
        await form.locator(`input[name=${name}]`).fill(value);
      }
      await form.locator("select[name=security]").selectOption("ldaps");
      await form.locator("input[name=verify]").uncheck();
      await saveSync(page, form);
      const settings = () => JSON.parse(cli("sync", "ldap", "status", "--company", "acme", "--json")).settings;
      assert.deepEqual([settings().security, settings().verify, settings().port, settings().filter],
        ["ldaps", false, 1, "(department=IT)"]);
      await form.locator("input[name=filter]").fill("");
      await saveSync(page, form);
      assert.equal(settings().filter, "");
      // Nothing listens on port 1: Test says why, as an error.
      await form.locator("[data-test]").click();
      await page.waitForSelector("#message.error:has-text('127.0.0.1')");
      await noHorizontalScroll("sync-ldap");
      cli("sync", "ldap", "remove", "--company", "acme");
    });
    await step("the page asked for last is the one shown, whichever page's data comes last", async () => {
      // A request held until released, and its answer once it came.
      const hold = async (pattern) => {
        let release;
        const held = new Promise((r) => { release = r; });
        await page.route(pattern, async (r) => { await held; await r.continue(); });
        return async () => {
          // Waited for before it is let go: a response that came first would never be seen.
          const answered = page.waitForResponse(pattern);
          release();
          await answered;
          await page.waitForTimeout(300);  // the late answer's page has its data: it would draw now
          await page.unroute(pattern);
        };
      };
      await page.goto(base + "/#/audit");
      await page.waitForSelector("h1:text-is('Audit')");
      // The users' list answers slowly; Import Users is asked for meanwhile, shown at once, and
      // its form filled in.
      const users = await hold(/\/api\/v1\/companies\/acme\/users\?/);
      await page.goto(base + "/#/users");
      await page.goto(base + "/#/import");
      await page.waitForSelector("h1:has-text('Import Users: CSV')");
      const azure = page.locator("form[data-sync=azure]");
      await azure.locator("[data-status]:has-text('Last success')").waitFor();
      await azure.locator("input[name=max_delete_count]").fill("123");
      await users();
      assert.ok(await page.isVisible("h1:has-text('Import Users: CSV')"), "the Users page was drawn over it");
      assert.equal(await page.locator("h1:text-is('Users')").count(), 0);
      assert.equal(await azure.locator("input[name=max_delete_count]").inputValue(), "123",
        "the page was drawn again over what was typed");
      // A change whose answer comes after the user went to another page: the list it changed
      // is not drawn over that page.
      await page.goto(base + "/#/invalid");
      await page.waitForSelector("h1:text-is('Marked Invalid')");
      const added = await hold(/\/api\/v1\/companies\/acme\/invalid$/);
      await page.fill("#add-invalid input[name=address]", "late.answer@acme.example");
      await page.click("#add-invalid button");
      await page.goto(base + "/#/settings");
      await page.waitForSelector("h1:has-text('SMTP Discovery settings')");
      await added();
      assert.ok(await page.isVisible("h1:has-text('SMTP Discovery settings')"), "the invalid list was drawn over it");
      assert.ok(cli("invalid", "list", "--company", "acme").includes("late.answer@acme.example"));
      cli("invalid", "remove", "late.answer@acme.example");
      // A form whose stored settings come late: what is typed is not overwritten when they come
      // (the page is drawn with them, not filled in after).
      const stored = await hold(/\/api\/v1\/companies\/acme\/sync\/azure$/);
      await page.goto(base + "/#/import");
      const typing = azure.locator("input[name=max_delete_count]").fill("77");
      await stored();
      await typing;
      await page.waitForTimeout(300);
      assert.equal(await azure.locator("input[name=max_delete_count]").inputValue(), "77",
        "the stored settings were written over what was typed");
    });
    await step("check a domain's mail server from the Domains page", async () => {
      await page.goto(base + "/#/domains");
      await page.waitForSelector("td:has-text('catchall.example')");
      assert.equal(await page.locator("#add-domain").count(), 0, "a company administrator adds no domains");
      await page.click("[data-check='catchall.example']");
      await page.waitForSelector("#domain-check [data-verdict]:has-text('accepts any address')");
      await page.waitForSelector("#domain-check td:has-text('ready in')");
      await noHorizontalScroll("domain-check");
      await page.click("[data-check='down.example']");
      await page.waitForSelector("#domain-check [data-verdict]:has-text('cannot take mail')");
      await page.waitForSelector("#domain-check td:has-text('failed in')");
      // The catch-all domain's answers (a callout at the start) are forgotten: the next mail
      // asks its server again (one more probe), and finds it catch-all again.
      await page.click("[data-flush='catchall.example']");
      await page.waitForSelector("#message:has-text('answer(s) for catchall.example forgotten')");
      assert.match(await page.textContent("#message"), /^[1-9]\d* answer/);
      const probes = async () => Number((await (await fetch(base + "/metrics")).text())
        .match(/^mailroster_verify_probes_total (\S+)$/m)[1]);
      const before = await probes();
      swaksToCatchAll();
      assert.equal(await probes(), before + 1);
    });
    await step("set the company's contacts, and Thursday's report goes to them", async () => {
      await page.goto(base + "/#/company");
      await page.waitForSelector("h1:has-text('Company acme')");
      assert.equal(await page.locator("#networks").count(), 0, "an administrator sets no relay networks");
      await page.waitForSelector("#networks-list:has-text('none')");
      await page.fill("input[name=tech_contact]", "not mail");
      await page.click("#contacts button");
      await page.waitForSelector("#message.error");
      await page.fill("input[name=tech_contact]", "it@acme.example");
      await page.click("#contacts button");
      await page.waitForSelector("#message:has-text('contacts saved')");
      assert.equal(JSON.parse(cli("company", "show", "acme", "--json")).tech_contact, "it@acme.example");
      // Logins: another administrator added, then removed; never one's own.
      assert.equal(await page.locator("[data-unlogin='admin@acme.example']").count(), 0);
      await page.fill("input[aria-label='login email']", "helper@acme.example");
      await page.fill("input[aria-label='first password']", "short");
      await page.click("#add-login button");
      await page.waitForSelector("#message.error:has-text('10 characters')");
      await page.fill("input[aria-label='first password']", "helper horse battery");
      await page.click("#add-login button");
      await page.waitForSelector("td:has-text('helper@acme.example')");
      assert.match(cli("login", "list"), /helper@acme\.example\s+company_admin\s+acme/);
      assert.equal(await page.locator("tr:has(td:text-is('helper@acme.example')) td[data-label=Role]").textContent(),
        "company administrator");  // the role named, not its key
      await noHorizontalScroll("company");
      await page.click("[data-unlogin='helper@acme.example']");
      await page.waitForSelector("td:has-text('helper@acme.example')", { state: "detached" });
      assert.doesNotMatch(cli("login", "list"), /helper@/);
      // Licensed users: this month's days (serve counted today when it started), then a month
      // picked, whose day a maintenance run by hand counted.
      assert.equal(await page.locator("#usage-month").inputValue(), new Date().toISOString().slice(0, 7));
      await page.waitForSelector("#usage [data-usage-day]");
      cli("maintain", "--force", "--at", "2026-10-12T09:00:00Z");
      const users = JSON.parse(cli("user", "list", "--company", "acme", "--json")).length;
      await page.fill("#usage-month", "2026-10");
      const day = page.locator("#usage tr:has([data-usage-day]:has-text('2026-10-12'))");
      await day.waitFor();
      assert.equal(await page.locator("#usage [data-usage-day]").count(), 1);
      assert.equal(await day.locator("td[data-label='Users']").textContent(), String(users));
      assert.equal(await page.locator("#usage [data-usage-peak]").textContent(), String(users));
      // The month's days as a CSV file, for a billing system.
      const [download] = await Promise.all([page.waitForEvent("download"), page.click("#usage-csv")]);
      assert.equal(download.suggestedFilename(), "acme-usage-2026-10-01-2026-10-31.csv");
      const csv = fs.readFileSync(await download.path(), "utf8");
      assert.equal(csv, cli("usage", "--company", "acme", "--month", "2026-10", "--csv"));
      assert.match(csv, new RegExp(`\r\n2026-10-12,acme,${users},${users},`));
      await noHorizontalScroll("company usage");
      await page.goto(base + "/#/settings");
      await page.click("#preview-report");
      await page.waitForSelector("#report-to:has-text('it@acme.example')");
    });
    await step("SMTP Discovery settings, named as in the seed, saved and read back", async () => {
      await page.goto(base + "/#/settings");
      const form = page.locator("#settings");
      await form.locator("label:has-text('Inbound detection threshold') input").waitFor();
      const before = JSON.parse(cli("discovery", "settings", "--company", "acme", "--json"));
      await form.locator("label:has-text('Default new user role') select").selectOption("end_user");
      await form.locator("label:has-text('Inbound detection threshold') input").fill("5");
      await form.locator("label:has-text('Auto-add new users detected via outbound') input").check();
      await page.evaluate(() => { document.querySelector("#message").textContent = ""; });
      await form.locator("button:has-text('Save')").click();
      await page.waitForSelector("#message:has-text('settings saved')");
      const after = JSON.parse(cli("discovery", "settings", "--company", "acme", "--json"));
      assert.deepEqual(after, { ...before, default_role: "end_user", inbound_threshold: 5, auto_add_outbound: true });
      // Over the server's limit: refused with the reason, and nothing changes.
      await form.locator("label:has-text('Inbound detection threshold') input").fill("1001");
      await form.locator("button:has-text('Save')").click();
      await page.waitForSelector("#message.error:has-text('inbound_threshold must be between 1 and 1000')");
      assert.deepEqual(JSON.parse(cli("discovery", "settings", "--company", "acme", "--json")), after);
      await noHorizontalScroll("discovery-settings");
      cli("discovery", "set", "--company", "acme", `default_role=${before.default_role}`,
        `inbound_threshold=${before.inbound_threshold}`, `auto_add_outbound=${before.auto_add_outbound}`);
    });
    await step("preview Thursday's report from the settings", async () => {
      await page.goto(base + "/#/settings");
      await page.click("#preview-report");
      await page.waitForSelector("#report-preview:has-text('newbie@acme.example')");
      assert.match(await page.textContent("#report-to"), /^Week of \d{4}-\d{2}-\d{2}, to /);
      await noHorizontalScroll("report-preview");
    });
    await step("the audit trail shows the changes", async () => {
      await page.goto(base + "/#/audit");
      await page.waitForSelector("td:has-text('user.add')");
      await noHorizontalScroll("audit");
      const pager = page.locator("[data-pager=audit]");
      const counted = (await pager.locator(".page-info").textContent()).match(/^1–100 of ([\d,]+)$/)[1];
      const total = Number(counted.replaceAll(",", ""));
      assert.ok(total > 150, `the whole trail is counted (${total})`);
      await pager.locator("[data-page=next]").click();
      await pager.locator(`.page-info:has-text('101–${Math.min(200, total)} of ${counted}')`).waitFor();
      // What happened to newbie@: discovered, then made a user through the Select menu.
      await page.fill("input[aria-label='events about']", "NEWBIE@acme.example");
      await page.click("#find-audit button");
      await pager.locator(".page-info:has-text(' of ')").filter({ hasNotText: `of ${counted}` }).waitFor();
      const objects = await page.$$eval("td[data-label=Object]", (tds) => tds.map((t) => t.textContent));
      assert.ok(objects.length >= 1 && objects.every((o) => o === "newbie@acme.example"), objects.join());
      assert.ok(await page.isVisible("td[data-label=What]:has-text('user.add')"));
      // What each event changed: member042's names and role, edited on the user's page above.
      await page.fill("input[aria-label='events about']", "member042@acme.example");
      await page.click("#find-audit button");
      const update = page.locator("tr:has(td[data-label=What]:text-is('user.update'))").first();
      await update.waitFor();
      const change = await update.locator("td[data-label=Change]").textContent();
      assert.match(change, /first name: \S+ -> Forty/);
      assert.match(change, /role: silent user -> end user/);
      assert.doesNotMatch(change, /updated at|surname/, "only what changed");
      const added = await page.locator("tr:has(td[data-label=What]:text-is('user.add')) td[data-label=Change]")
        .first().textContent();
      assert.match(added, /role: /);
      assert.doesNotMatch(added, /->|member042@acme\.example/, "what was made; the address is the Object");
      // Every action the company's trail holds by now can be chosen in the filter.
      const held = new Set(JSON.parse(cli("audit", "list", "--company", "acme", "--limit", "0", "--json"))
        .map((e) => e.action));
      const offered = await page.$$eval("select[aria-label=action] option", (os) => os.map((o) => o.value));
      for (const a of held) assert.ok(offered.includes(a), `the action filter lacks ${a}`);
      // By action, any address: every update, only updates.
      await page.fill("input[aria-label='events about']", "");
      await page.selectOption("select[aria-label=action]", "user.update");
      await page.click("#find-audit button");
      const onlyUpdates = async () => {
        const what = await page.$$eval("td[data-label=What]", (tds) => tds.map((t) => t.textContent));
        return what.length >= 1 && what.every((a) => a === "user.update");
      };
      for (let i = 0; i < 50 && !(await onlyUpdates()); i++) await page.waitForTimeout(100);
      assert.ok(await onlyUpdates(), "the list drawn again with updates only");
      await page.waitForSelector("td[data-label=Object]:text-is('member042@acme.example')");
    });
    await step("the mail log says what happened to each recipient", async () => {
      // Delivered to the catch-all server (sent at the start); refused: marked invalid.
      const gone = `gone${width}@acme.example`;
      cli("invalid", "add", gone);
      assert.throws(() => execFileSync("swaks", ["--server", `127.0.0.1:${smtpPort}`, "--to", gone,
        "--from", "bob@example.org", "--helo", "client.example.org"], { stdio: "ignore" }));
      await page.goto(base + "/#/mail-log");
      await page.waitForSelector("h1:has-text('Mail log')");
      await page.waitForSelector("td[data-label=To]:has-text('anyone@catchall.example')");
      for (let i = 0; i < 50 && !(await page.isVisible(`td[data-label=To]:has-text('${gone}')`)); i++) {
        await new Promise((r) => setTimeout(r, 200));  // serve writes the log every second
        await page.click("#find-mail button");
        await page.waitForSelector("h1:has-text('Mail log')");
      }
      const row = page.locator(`tr:has(td[data-label=To]:has-text('${gone}'))`);
      assert.match(await row.locator("td[data-label=Result]").textContent(), /^rejected$/);
      assert.match(await row.locator("td[data-label=Reply]").textContent(), /^550 5\.1\.1 .*marked invalid/);
      // What the gateway would answer, and why: the invalid address, and a sub-address of a user.
      await page.fill("input[aria-label='address to check']", gone);
      await page.click("#explain button");
      await page.waitForSelector("#explained:has-text('marked invalid')");
      assert.match(await page.textContent("#explained"), /550 5\.1\.1 <.*>: recipient address rejected: address is marked invalid/);
      await page.fill("input[aria-label='address to check']", "alice+news@acme.example");
      await page.click("#explain button");
      await page.waitForSelector("#explained:has-text('sub-addressing')");
      assert.match(await page.textContent("#explained"), /^alice\+news@acme\.example: 250 2\.1\.5 Ok/);
      // An address the mail server was asked about: what this node remembers of its answer.
      await page.fill("input[aria-label='address to check']", "anyone@catchall.example");
      await page.click("#explain button");
      await page.waitForSelector("#explained:has-text('Remembered')");
      assert.match(await page.textContent("#explained"),
        /Remembered: 250 .*\(accept\), asked again after \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\./);
      await noHorizontalScroll("mail-log");
      // Found by a part of the address, any case, and by result.
      await page.fill("input[aria-label='mail from or to']", gone.toUpperCase().replace("@ACME.EXAMPLE", ""));
      await page.selectOption("select[aria-label=result]", "rejected");
      await page.click("#find-mail button");
      await page.waitForSelector("td[data-label=To]:has-text('anyone@catchall.example')", { state: "detached" });
      const shown = await page.$$eval("td[data-label=To]", (tds) => tds.map((t) => t.textContent));
      assert.deepEqual(shown, [gone]);
      await page.selectOption("select[aria-label=result]", "delivered");
      await page.click("#find-mail button");
      await page.waitForSelector(".page-info:has-text('none')");
      // From a user's page: the mail log of its address. Alice's mail waits: her company's
      // server (127.0.0.1:25) does not answer.
      assert.throws(() => execFileSync("swaks", ["--server", `127.0.0.1:${smtpPort}`, "--to", "alice@acme.example",
        "--from", "carol@example.org", "--helo", "client.example.org"], { stdio: "ignore" }));
      const aliceId = JSON.parse(cli("user", "show", "alice@acme.example", "--json")).id;
      await page.goto(base + "/#/user/" + aliceId);
      await page.waitForSelector("h1:has-text('alice@acme.example')");
      for (let i = 0; i < 50; i++) {
        await page.click("#user-mail");
        await page.waitForSelector("h1:has-text('Mail log')");
        if (await page.isVisible("td[data-label=From]:has-text('carol@example.org')")) break;
        await page.goBack();
        await new Promise((r) => setTimeout(r, 200));  // serve writes the log every second
      }
      assert.equal(await page.inputValue("input[aria-label='mail from or to']"), "alice@acme.example");
      const alice = page.locator("tr:has(td[data-label=From]:has-text('carol@example.org'))");
      assert.match(await alice.locator("td[data-label=Result]").textContent(), /^deferred$/);
      assert.match(await alice.locator("td[data-label=Reply]").textContent(), /^451 4\.4\.1 /);
    });
    await page.close();
  }
  await step("an operator adds a domain, checks it and moves its mail", async () => {
    const page = await loggedIn("ops@example.net", "Users");
    await page.goto(base + "/#/domains");
    await page.fill("#add-domain input[name=name]", "New.Example");
    await page.fill("#add-domain input[name=destination]", `127.0.0.1:${mtaPort}`);
    await page.click("#add-domain button");
    await page.waitForSelector("td:has-text('new.example')");
    await page.click("[data-check='new.example']");
    await page.waitForSelector("#domain-check [data-verdict]:has-text('accepts any address')");
    await page.fill("input[aria-label='destination of new.example']", "127.0.0.1:1");
    await page.click("[data-destination='new.example'] button");
    await page.waitForSelector("#message:has-text('destination saved')");
    assert.match(cli("domain", "list", "--company", "acme"), /new\.example\s+acme\s+127\.0\.0\.1:1\n/);
    await page.click("[data-check='new.example']");
    await page.waitForSelector("#domain-check [data-verdict]:has-text('cannot take mail')");
    // A second server behind the first: the check shows both, and which one takes the mail.
    await page.fill("input[aria-label='destination of new.example']", `127.0.0.1:1, 127.0.0.1:${mtaPort}`);
    await page.click("[data-destination='new.example'] button");
    await page.waitForSelector("#message:has-text('destination saved')");
    assert.match(cli("domain", "list", "--company", "acme"),
      new RegExp(`new\\.example\\s+acme\\s+127\\.0\\.0\\.1:1, 127\\.0\\.0\\.1:${mtaPort}\\n`));
    await page.click("[data-check='new.example']");
    await page.waitForSelector("#domain-check [data-server='127.0.0.1:1'] [data-verdict]:has-text('cannot take mail')");
    await page.waitForSelector(`#domain-check [data-server='127.0.0.1:${mtaPort}'] h3:has-text('mail goes here now')`);
    await page.waitForSelector(`#domain-check [data-server='127.0.0.1:${mtaPort}'] [data-verdict]:has-text('accepts any address')`);
    await page.screenshot({ path: path.join(artifacts, "domains-operator-1280.png"), fullPage: true });
    // Removal is asked twice, and a domain with addresses is kept, saying why.
    await page.click("[data-unroute='acme.example']");
    await page.click("[data-confirm-yes]");
    await page.waitForSelector("#message.error:has-text('still has')");
    await page.click("[data-unroute='new.example']");
    await page.click("[data-confirm-no]");
    await page.waitForSelector("[data-unroute='new.example']");
    await page.click("[data-unroute='new.example']");
    await page.click("[data-confirm-yes]");
    await page.waitForSelector("#message:has-text('domain new.example removed')");
    await page.waitForSelector("td:has-text('new.example')", { state: "detached" });
    assert.doesNotMatch(cli("domain", "list", "--company", "acme"), /new\.example/);
    await page.close();
  });
  await step("an operator sees the gateway's nodes and its catch-all mail servers", async () => {
    const page = await loggedIn("ops@example.net", "Users");
    await page.click("#nav-gateway");
    await page.waitForSelector("h1:has-text('Gateway')");
    const nodes = JSON.parse(cli("node", "list", "--json"));
    assert.equal(nodes.length, 1, JSON.stringify(nodes));
    const row = page.locator(`tr:has([data-node='${nodes[0].id}'])`);
    await row.locator("[data-node-state]:has-text('alive')").waitFor();
    await row.locator("[data-scheduler]:has-text('runs the scheduler')").waitFor();
    assert.match(await row.textContent(), new RegExp(`inbound SMTP 127\\.0\\.0\\.1:${smtpPort}`));
    await page.waitForSelector("[data-catch-all='catchall.example']");
    // Mail to a domain whose server is down: 451, and the server is listed as failing.
    assert.throws(() => execFileSync("swaks", ["--server", `127.0.0.1:${smtpPort}`, "--to", "someone@down.example",
      "--from", "bob@example.org", "--helo", "client.example.org"], { stdio: "ignore" }));
    await page.reload();
    await page.waitForSelector("h1:has-text('Gateway')");
    assert.match(await page.locator("tr:has([data-failing='127.0.0.1:1'])").textContent(), /Connection refused/);
    assert.match(await page.locator("tr:has([data-catch-all='catchall.example'])").textContent(),
      new RegExp(`acme\\s*127\\.0\\.0\\.1:${mtaPort}`));
    // Every company's directory syncs: acme's Azure AD sync worked; with a wrong secret it fails.
    await page.locator("tr:has([data-sync-company='acme']):has-text('Azure AD') .ok:has-text('ok')").waitFor();
    cliIn("wrong-secret\n", "sync", "azure", "configure", "--company", "acme", "--secret-stdin");
    assert.throws(() => cli("sync", "azure", "run", "--company", "acme"));
    await page.reload();
    await page.locator("tr:has([data-sync-company='acme']) [data-sync-failing]:has-text('Invalid client secret')").waitFor();
    cliIn("graph-secret\n", "sync", "azure", "configure", "--company", "acme", "--secret-stdin");
    // Every company's licensed users this month, as `usage` reports them.
    const usage = JSON.parse(cli("usage", "--json")).companies.find((c) => c.company === "acme");
    assert.equal(await page.locator("#usage tr:has([data-usage-company='acme']) [data-usage-peak]").textContent(),
      String(usage.peak_users));
    await page.screenshot({ path: path.join(artifacts, "gateway-operator-1280.png"), fullPage: true });
    await page.close();
  });
  await step("an operator searches every company's mail log at once", async () => {
    const page = await loggedIn("ops@example.net", "Users");
    await page.goto(base + "/#/mail-log");
    await page.waitForSelector("h1:has-text('Mail log')");
    assert.ok(await page.isHidden("th:has-text('Company')"), "one company's log names none");
    await page.fill("input[aria-label='mail from or to']", "gone1280@");
    await page.check("input[name=every]");
    await page.click("#find-mail button");
    await page.waitForSelector("th:has-text('Company')");
    const rows = await page.$$eval("tbody tr", (trs) => trs.map((tr) =>
      [tr.querySelector("[data-label=Company]").textContent, tr.querySelector("[data-label=To]").textContent]));
    assert.deepEqual(rows, [["acme", "gone1280@acme.example"]]);
    // Mail for a domain no company has: relay denied, and in the operators' view only.
    assert.throws(() => execFileSync("swaks", ["--server", `127.0.0.1:${smtpPort}`, "--to",
      "someone@not-yet-registered.example", "--from", "bob@example.org", "--helo", "client.example.org"],
      { stdio: "ignore" }));
    await page.fill("input[aria-label='mail from or to']", "@not-yet-registered.example");
    const unrouted = page.locator("tr:has([data-no-company])");
    for (let i = 0; i < 50 && !(await unrouted.count()); i++) {  // serve writes the log every second
      await page.click("#find-mail button");
      await page.waitForTimeout(200);
    }
    assert.match(await unrouted.textContent(), /someone@not-yet-registered\.example.*rejected.*550 5\.7\.1/s);
    await page.close();
  });
  await step("an operator sets the relay networks and adds a company", async () => {
    const page = await loggedIn("ops@example.net", "Users");
    await page.goto(base + "/#/company");
    await page.fill("textarea[name=networks]", "192.0.2.0/33");
    await page.click("#networks button");
    await page.waitForSelector("#message.error:has-text('192.0.2.0/33')");
    await page.fill("textarea[name=networks]", "192.0.2.0/24\n2001:db8::/32");
    await page.click("#networks button");
    await page.waitForSelector("#message:has-text('relay networks saved')");
    assert.deepEqual(JSON.parse(cli("company", "show", "acme", "--json")).relay_networks,
      ["192.0.2.0/24", "2001:db8::/32"]);
    await page.fill("input[aria-label='new company']", "initech");
    await page.click("#add-company button");
    await page.waitForSelector("h1:has-text('Company initech')");
    assert.equal(await page.inputValue("#company"), "initech");
    assert.match(cli("company", "list"), /initech/);
    // The operator's header (ten pages, address, company, Log out) keeps to one line at 1280 px.
    const [navTop, logoutTop] = await page.evaluate(() =>
      ["#nav", "#logout"].map((s) => document.querySelector(s).getBoundingClientRect().top));
    assert.ok(Math.abs(navTop - logoutTop) < 10, `Log out wraps: top ${logoutTop} vs nav ${navTop}`);
    await page.screenshot({ path: path.join(artifacts, "company-operator-1280.png"), fullPage: true });
    // Off-boarding: the company with its domain and users, once its name is typed.
    cli("domain", "add", "initech.example", "--company", "initech", "--destination", "127.0.0.1:25");
    cli("user", "add", "peter@initech.example");
    await page.goto(base + "/#/users");
    await page.goto(base + "/#/company");
    await page.waitForSelector("#remove-company:has-text('1 domain(s) and 1 user(s)')");
    const remove = page.locator("#remove-company-form button");
    assert.ok(await remove.isDisabled(), "nothing typed: no removal");
    await page.fill("input[aria-label='name of the company to remove']", "initec");
    assert.ok(await remove.isDisabled(), "another name: no removal");
    await page.fill("input[aria-label='name of the company to remove']", "initech");
    await remove.click();
    await page.waitForSelector("#message:has-text('company initech removed')");
    await page.locator("#company option:text-is('initech')").waitFor({ state: "detached" });
    assert.doesNotMatch(cli("company", "list"), /initech/);
    assert.doesNotMatch(cli("user", "list"), /peter@initech/);
    await page.close();
  });
  await step("an invited administrator chooses a password, and sets a forgotten one again", async () => {
    const admin = await loggedIn("admin@acme.example", "Users");
    await admin.goto(base + "/#/company");
    await admin.fill("input[aria-label='login email']", "desk@acme.example");
    await admin.click("#add-login button");  // no password: an invitation
    await admin.waitForSelector("#message:has-text('desk@acme.example was mailed a link')");
    await admin.close();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const choose = async (link, password) => {
      await page.goto(link);
      await page.waitForSelector("h1:has-text('Choose a password')");
      await page.fill("input[name=password]", password);
      await page.fill("input[name=again]", password + "!");
      await page.click("#reset button");
      await page.waitForSelector("#reset-error:has-text('differ')");
      await page.fill("input[name=again]", password);
      await page.click("#reset button");
      await page.waitForSelector("#message:has-text('password set')");
      await page.waitForSelector("h1:has-text('Log in')");
      assert.equal(new URL(page.url()).hash, "#/");  // the used link leaves the address bar
    };
    await choose(await mailedLink("desk@acme.example"), "the desk's first password");
    await logIn(page, "desk@acme.example", "the desk's first password", "Users");
    await page.click("#logout");
    await page.waitForSelector("h1:has-text('Log in')");
    await page.click("text=Forgot your password?");
    await page.fill("#forgot-form input[name=email]", "desk@acme.example");
    await page.click("#forgot-form button");
    await page.waitForSelector("#forgot-answer:has-text('a link is on its way')");
    await page.screenshot({ path: path.join(artifacts, "forgot-1280.png"), fullPage: true });
    const link = await mailedLink("desk@acme.example", 1);
    await choose(link, "the desk's second password");
    await logIn(page, "desk@acme.example", "the desk's second password", "Users");
    // Used once: the same link again says so.
    await page.goto(link);
    await page.fill("input[name=password]", "a third password here");
    await page.fill("input[name=again]", "a third password here");
    await page.click("#reset button");
    await page.waitForSelector("#reset-error:has-text('unknown, used or expired')");
    await page.close();
  });
  await step("an end user sees its own account and aliases only", async () => {
    const page = await loggedIn("alice@acme.example", "My account");
    await page.waitForSelector("#aliases:has-text('a.smith@acme.example')");
    await page.waitForSelector("p:text-is('alice@acme.example (end user)')");
    assert.ok(await page.isHidden("#nav"), "no administrator menu");
    await page.fill("input[name=surname]", "Liddell");
    await page.click("button:has-text('Save')");
    await page.waitForSelector("#message:has-text('saved')");
    assert.match(cli("user", "list", "--company", "acme"), /Liddell/);
    await page.screenshot({ path: path.join(artifacts, "end-user-1280.png"), fullPage: true });
    // Its own password: the current one is asked; the change ends the session.
    await page.fill("input[aria-label='current password']", "not the password");
    await page.fill("input[aria-label='new password']", "a better horse battery");
    await page.click("#password button");
    await page.waitForSelector("#message.error:has-text('current password is wrong')");
    await page.fill("input[aria-label='current password']", PASSWORD);
    await page.click("#password button");
    await page.waitForSelector("#message:has-text('log in with the new one')");
    await page.waitForSelector("h1:has-text('Log in')");
    await logIn(page, "alice@acme.example", "a better horse battery", "My account");
    await page.close();
  });
} finally {
  await browser.close();
  stopping = true;
  serve.kill("SIGTERM");
  graph.kill("SIGTERM");
  mta.kill("SIGTERM");
  fs.rmSync(dir, { recursive: true, force: true });
}
if (failed) process.exit(1);
console.log("screenshots in " + artifacts);
