// The LDAP source against a real OpenLDAP slapd (tests/ldap/slapd_fixture.py) on loopback:
// paging past the server's size limit, AD attributes, nested and large groups, LDAPS and
// StartTLS with a test CA, refused binds, a server that is down or dies mid-search, and the
// sync planner's include flags and actions on what it read.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "directory/ldap/ldap_directory.hpp"
#include "directory/ldap/ldap_source.hpp"
#include "directory/sync_apply.hpp"
#include "directory/sync_service.hpp"
#include "store/secret_box.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "test_support.hpp"

namespace mailroster::directory::ldap {
namespace {

using mailroster::testing::apply_plan;
using mailroster::testing::plan_for;

using mailroster::testing::run_command;
using mailroster::testing::TempDir;

// One slapd for the suite (loading 2,500 users takes a second); tests that change the
// directory put it back.
class Slapd {
 public:
  explicit Slapd(const std::string& dir, std::vector<std::string> options = {})
      : dir_(dir), options_(std::move(options)) {
    start();
  }
  ~Slapd() { stop(); }
  void start() {
    std::vector<std::string> args = {MAILROSTER_SLAPD_FIXTURE, "start", dir_};
    args.insert(args.end(), options_.begin(), options_.end());
    const auto r = run_command("/usr/bin/python3", args);
    if (r.status != 0) throw std::runtime_error("slapd fixture: " + r.err + r.out);
    info = nlohmann::json::parse(r.out);
  }
  void stop() { run_command("/usr/bin/python3", {MAILROSTER_SLAPD_FIXTURE, "stop", dir_}); }
  void kill_now() const { ::kill(info["pid"].get<int>(), SIGKILL); }
  // ldapmodify as the directory's administrator.
  void modify(const std::string& ldif) const {
    const auto r = run_command(
        "/usr/bin/ldapmodify",
        {"-x", "-H", "ldap://127.0.0.1:" + std::to_string(info["ldap_port"].get<int>()), "-D",
         info["admin_dn"].get<std::string>(), "-w", info["admin_password"].get<std::string>()},
        ldif);
    if (r.status != 0) throw std::runtime_error("ldapmodify: " + r.err);
  }
  LdapSettings settings(Security security = Security::none) const {
    LdapSettings s;
    s.host = "127.0.0.1";
    s.port = info[security == Security::ldaps ? "ldaps_port" : "ldap_port"].get<int>();
    s.security = security;
    s.ca_file = info["ca_file"].get<std::string>();
    s.bind_dn = info["bind_dn"].get<std::string>();
    s.base_dn = info["base_dn"].get<std::string>();
    s.network_timeout_seconds = 3;
    s.operation_timeout_seconds = 10;
    s.page_size = 500;  // several pages under the server's limit of 1,000
    return s;
  }
  std::string password() const { return info["password"].get<std::string>(); }
  nlohmann::json info;

 private:
  std::string dir_;
  std::vector<std::string> options_;
};

// `mailroster --db DB ...` on a database holding company corp and its domain corp.example.
class CorpCli {
 public:
  explicit CorpCli(std::string db) : db_(std::move(db)) {
    for (const auto& args : {std::vector<std::string>{"company", "add", "corp"},
                             std::vector<std::string>{"domain", "add", "corp.example", "--company",
                                                      "corp", "--destination", "127.0.0.1:25"}}) {
      const auto r = (*this)(args);
      if (r.status != 0) throw std::runtime_error("setting up corp: " + r.err);
    }
  }
  mailroster::testing::CommandResult operator()(std::vector<std::string> args,
                                                const std::string& in = "") const {
    args.insert(args.begin(), {"--db", db_});
    return run_command(MAILROSTER_BINARY, args, in);
  }

 private:
  std::string db_;
};

class LdapSource : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir = new TempDir();
    slapd = new Slapd(dir->file("slapd"));
  }
  static void TearDownTestSuite() {
    delete slapd;
    delete dir;
  }
  static const core::DirectoryEntry* find(const LdapRead& r, const std::string& address) {
    for (const auto& e : r.snapshot.entries) {
      if (e.address.str() == address) return &e;
    }
    return nullptr;
  }
  LdapRead read(const LdapSettings& s) {
    auto r = read_directory(s, slapd->password(), std::nullopt);
    if (!r) throw std::runtime_error(r.error().message);
    return std::move(r).value();
  }
  static TempDir* dir;
  static Slapd* slapd;
};
TempDir* LdapSource::dir = nullptr;
Slapd* LdapSource::slapd = nullptr;

TEST_F(LdapSource, PagesPastTheServerSizeLimitAndReadsEveryAttribute) {
  const auto r = read(slapd->settings());
  // 2,500 bulk users + alice, bob, carol, info, room1, dave + staff, news, everyone groups.
  EXPECT_EQ(r.snapshot.entries.size(), 2509u);
  EXPECT_GE(r.pages, 5u);  // 500 per page; the server stops unpaged searches at 1,000
  EXPECT_TRUE(r.snapshot.complete);
  EXPECT_FALSE(r.incremental);  // slapd is not AD: always a full run

  const auto* alice = find(r, "alice@corp.example");
  ASSERT_TRUE(alice);
  EXPECT_EQ(alice->first_name, "Alice");
  EXPECT_EQ(alice->source_id.size(), 36u);  // objectGUID in AD's text form
  ASSERT_TRUE(alice->aliases);
  ASSERT_EQ(alice->aliases->size(), 1u);  // X500:/SIP: ignored, never its own alias
  EXPECT_EQ((*alice->aliases)[0].str(), "a.smith@corp.example");
  EXPECT_TRUE(find(r, "bob@corp.example")->disabled);
  EXPECT_TRUE(find(r, "carol@corp.example")->hidden);
  EXPECT_TRUE(find(r, "info@corp.example")->functional);
  EXPECT_TRUE(find(r, "room1@corp.example")->functional);
  EXPECT_FALSE(find(r, "dave@corp.example")->source_id.empty());  // entryUUID
  const auto* staff = find(r, "staff@corp.example");
  EXPECT_TRUE(staff->security_group);
  EXPECT_EQ(staff->members, 3u);  // alice + nested sales (bob, carol)
  EXPECT_FALSE(find(r, "news@corp.example")->security_group);
  EXPECT_EQ(find(r, "everyone@corp.example")->members, 1600u);
  // The bad entry is reported, not imported; an entry without mail is not an entry.
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_NE(r.rejected[0].dn.find("cn=broken"), std::string::npos);
}

TEST_F(LdapSource, LdapsAndStartTlsVerifyTheCertificate) {
  EXPECT_EQ(read(slapd->settings(Security::ldaps)).snapshot.entries.size(), 2509u);
  EXPECT_EQ(read(slapd->settings(Security::starttls)).snapshot.entries.size(), 2509u);
  auto untrusted = slapd->settings(Security::ldaps);
  untrusted.ca_file = "/etc/ssl/certs/ca-certificates.crt";  // public CAs: not the test CA
  auto r = read_directory(untrusted, slapd->password(), std::nullopt);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("ldaps://127.0.0.1"), std::string::npos) << r.error().message;
  untrusted.verify = false;
  EXPECT_TRUE(read_directory(untrusted, slapd->password(), std::nullopt));
}

// A server that accepts the connection and never answers: the operation timeout ends it.
TEST_F(LdapSource, AServerThatDoesNotAnswerTimesOut) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  auto s = slapd->settings();
  s.port = ntohs(addr.sin_port);
  s.operation_timeout_seconds = 1;
  const auto r = read_directory(s, slapd->password(), std::nullopt);
  ::close(listener);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("Timed out"), std::string::npos) << r.error().message;
}

TEST_F(LdapSource, ARefusedBindOrADownServerIsAClearError) {
  auto r = read_directory(slapd->settings(), "wrong", std::nullopt);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("invalid credentials"), std::string::npos) << r.error().message;
  auto down = slapd->settings();
  down.port = 1;  // nothing listens there
  r = read_directory(down, slapd->password(), std::nullopt);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("Can't contact LDAP server"), std::string::npos)
      << r.error().message;
  const auto info = test_connection(slapd->settings(), slapd->password());
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->state.highest_usn);  // not AD
}

// Several domain controllers: the first that answers is used, over LDAP and over LDAPS (its
// certificate checked against the host that answered); all of them down is one clear error.
TEST_F(LdapSource, SeveralHostsAreTriedInTurn) {
  auto s = slapd->settings();
  s.host = "127.0.0.2 127.0.0.1";  // nothing listens on 127.0.0.2
  const auto r = read(s);
  EXPECT_EQ(r.snapshot.entries.size(), 2509u);
  EXPECT_EQ(r.address, "127.0.0.1:" + std::to_string(s.port));
  const auto info = test_connection(s, slapd->password());
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->address, "127.0.0.1:" + std::to_string(s.port));
  auto tls = slapd->settings(Security::ldaps);
  tls.host = "127.0.0.2, 127.0.0.1";
  EXPECT_EQ(read(tls).snapshot.entries.size(), 2509u);
  // A server with a port of its own, after one on the setting's port.
  auto own_port = slapd->settings();
  own_port.host = "127.0.0.2, 127.0.0.1:" + std::to_string(own_port.port);
  own_port.port = 1;
  EXPECT_EQ(read(own_port).address, "127.0.0.1:" + std::to_string(s.port));
  s.host = "127.0.0.2 127.0.0.3";
  const auto down = read_directory(s, slapd->password(), std::nullopt);
  ASSERT_FALSE(down);
  const auto port = std::to_string(s.port);
  EXPECT_NE(down.error().message.find("ldap://127.0.0.2:" + port + " ldap://127.0.0.3:" + port),
            std::string::npos)
      << down.error().message;
}

class LdapSync : public LdapSource {
 protected:
  LdapSync()
      : clock(core::TimePoint{std::chrono::sys_days{std::chrono::year{2026} / 11 / 2}}),
        store(local.file("state.db"), clock) {
    company = store.add_company({"corp", "", "", {}}, admin);
    store.add_domain(company.id, "corp.example", core::Endpoint::parse("h").value(), admin);
  }
  core::Plan plan(const core::SyncOptions& o) {
    return plan_for(store, company.id, read(slapd->settings()).snapshot, o);
  }
  static std::set<std::string> addresses(const std::vector<core::PlanItem>& items) {
    std::set<std::string> out;
    for (const auto& i : items) out.insert(i.address.str());
    return out;
  }
  TempDir local;
  core::ManualClock clock;
  store::sqlite::SqliteStore store;
  core::Actor admin{"admin:test"};
  core::Company company;
};

TEST_F(LdapSync, IncludeFlagsDecideWhatIsCreated) {
  core::SyncOptions o;
  o.include_functional = false;
  auto p = plan(o);
  auto created = addresses(p.creates);
  EXPECT_EQ(p.creates.size(), 2502u);  // active users: alice, dave, 2,500 bulk
  for (const char* skipped : {"bob@corp.example", "carol@corp.example", "info@corp.example",
                              "room1@corp.example", "staff@corp.example", "news@corp.example"}) {
    EXPECT_FALSE(created.count(skipped)) << skipped;
  }
  o.include_disabled = o.include_hidden = o.include_functional = o.include_security_groups = true;
  created = addresses(plan(o).creates);
  for (const char* included :
       {"bob@corp.example", "carol@corp.example", "info@corp.example", "room1@corp.example",
        "staff@corp.example", "news@corp.example", "everyone@corp.example"}) {
    EXPECT_TRUE(created.count(included)) << included;
  }
  o.include_active = false;
  created = addresses(plan(o).creates);
  EXPECT_FALSE(created.count("alice@corp.example"));
  EXPECT_TRUE(created.count("bob@corp.example"));
  o.create = false;
  EXPECT_TRUE(plan(o).creates.empty());
  EXPECT_EQ(plan(o).skips.size(), 2509u);  // every entry, each with its reason
}

TEST_F(LdapSync, UpdatingSwitchedOffSkipsChangedEntries) {
  core::SyncOptions o;
  apply_plan(store, plan(o), false);
  store.update_user(store.find_user(core::Address::parse("dave@corp.example").value())->id,
                    {.surname = "Changed here"}, admin);
  o.update = false;
  auto p = plan(o);
  EXPECT_TRUE(p.updates.empty());
  bool skipped = false;
  for (const auto& i : p.skips) {
    skipped |= i.address.str() == "dave@corp.example" &&
               i.reason.find("updating is switched off") != std::string::npos;
  }
  EXPECT_TRUE(skipped);
  o.update = true;
  EXPECT_EQ(plan(o).updates.size(), 1u);
}

TEST_F(LdapSync, ChangedAndRemovedEntriesWithAndWithoutDelete) {
  core::SyncOptions o;
  apply_plan(store, plan(o), false);
  EXPECT_EQ(store.find_user(core::Address::parse("info@corp.example").value())->role,
            core::Role::functional);
  EXPECT_TRUE(store.find_alias(core::Address::parse("a.smith@corp.example").value()));
  EXPECT_TRUE(plan(o).empty());  // no change: nothing to write

  slapd->modify(
      "dn: cn=alice,ou=people,dc=corp,dc=example\nchangetype: modify\nreplace: sn\nsn: "
      "Smith-Jones\n-\nreplace: proxyAddresses\nproxyAddresses: SMTP:alice.sj@corp.example\n"
      "proxyAddresses: smtp:alice@corp.example\n\n"
      "dn: cn=user00007,ou=people,dc=corp,dc=example\nchangetype: delete\n");
  auto p = plan(o);
  ASSERT_EQ(p.updates.size(), 1u);  // matched by objectGUID although the address changed
  std::set<std::string> fields;
  for (const auto& c : p.updates[0].changes) fields.insert(c.field);
  EXPECT_EQ(fields, (std::set<std::string>{"address", "surname"}));
  EXPECT_TRUE(p.deletes.empty());  // deleting is off
  o.delete_removed = true;
  p = plan(o);
  ASSERT_EQ(p.deletes.size(), 1u);
  EXPECT_EQ(p.deletes[0].address.str(), "user00007@corp.example");
  apply_plan(store, p, false);
  const auto alice = store.find_user(core::Address::parse("alice.sj@corp.example").value());
  ASSERT_TRUE(alice);
  EXPECT_EQ(alice->surname, "Smith-Jones");
  EXPECT_EQ(store.find_alias(core::Address::parse("alice@corp.example").value())->user_id,
            alice->id);
  EXPECT_FALSE(store.find_user(core::Address::parse("user00007@corp.example").value()));

  slapd->modify(  // put the directory back for the other tests
      "dn: cn=alice,ou=people,dc=corp,dc=example\nchangetype: modify\nreplace: sn\nsn: Smith\n-\n"
      "replace: proxyAddresses\nproxyAddresses: smtp:a.smith@corp.example\nproxyAddresses: "
      "SMTP:alice@corp.example\n\n"
      "dn: cn=user00007,ou=people,dc=corp,dc=example\nchangetype: add\nobjectClass: "
      "inetOrgPerson\nobjectClass: adUser\ncn: user00007\nsn: Last7\ngivenName: First7\nmail: "
      "user00007@corp.example\nuserAccountControl: 512\n");
}

// A plain LDAP server lets two entries share an address or an objectGUID: the first entry
// read keeps it (a sync writes each page while reading the next, so no later page may repeat
// either).
TEST_F(LdapSync, AnAddressTwoEntriesHaveStaysWithTheFirst) {
  // alice's objectGUID, as the fixture makes it
  const auto alice_guid =
      run_command("/usr/bin/python3", {"-c",
                                       "import base64, uuid; print(base64.b64encode(uuid.uuid5("
                                       "uuid.NAMESPACE_DNS, 'alice').bytes_le).decode())"})
          .out;
  slapd->modify(
      "dn: cn=twin,ou=people,dc=corp,dc=example\nchangetype: add\nobjectClass: inetOrgPerson\n"
      "objectClass: adUser\ncn: twin\nsn: Twin\nmail: alice@corp.example\n"
      "userAccountControl: 512\n\n"
      "dn: cn=echo,ou=people,dc=corp,dc=example\nchangetype: add\nobjectClass: inetOrgPerson\n"
      "objectClass: adUser\ncn: echo\nsn: Echo\nproxyAddresses: SMTP:echo@corp.example\n"
      "proxyAddresses: smtp:a.smith@corp.example\nproxyAddresses: smtp:echo2@corp.example\n"
      "userAccountControl: 512\n\n"
      "dn: cn=clone,ou=people,dc=corp,dc=example\nchangetype: add\nobjectClass: inetOrgPerson\n"
      "objectClass: adUser\ncn: clone\nsn: Clone\nmail: clone@corp.example\n"
      "userAccountControl: 512\nobjectGUID:: " +
      alice_guid);
  std::vector<core::DirectoryEntry> handed;
  auto r = read_directory(slapd->settings(), slapd->password(), std::nullopt,
                          [&](std::vector<core::DirectoryEntry>&& batch) {
                            for (auto& e : batch) handed.push_back(std::move(e));
                            return true;
                          });
  slapd->modify(
      "dn: cn=twin,ou=people,dc=corp,dc=example\nchangetype: delete\n\n"
      "dn: cn=echo,ou=people,dc=corp,dc=example\nchangetype: delete\n\n"
      "dn: cn=clone,ou=people,dc=corp,dc=example\nchangetype: delete\n");
  ASSERT_TRUE(r) << r.error().message;
  std::map<std::string, std::size_t> seen;
  const core::DirectoryEntry* echo = nullptr;
  auto count = [&](const std::vector<core::DirectoryEntry>& list) {
    for (const auto& e : list) {
      ++seen[e.address.key()];
      if (e.address.str() == "echo@corp.example") echo = &e;
      for (const auto& a : e.aliases.value_or(std::vector<core::Address>{})) ++seen[a.key()];
    }
  };
  count(handed);
  count(r->snapshot.entries);
  for (const auto& [key, times] : seen) EXPECT_EQ(times, 1u) << key;
  EXPECT_FALSE(r->snapshot.entries.empty());  // the groups stay to the end
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->aliases,
            (std::vector<core::Address>{core::Address::parse("echo2@corp.example").value()}));
  std::set<std::string> reasons;
  for (const auto& x : r->rejected) reasons.insert(x.dn + ": " + x.reason);
  EXPECT_TRUE(reasons.count(
      "cn=twin,ou=people,dc=corp,dc=example: address alice@corp.example is also the address of "
      "cn=alice,ou=people,dc=corp,dc=example; left out"))
      << ::testing::PrintToString(reasons);
  EXPECT_TRUE(reasons.count(
      "cn=echo,ou=people,dc=corp,dc=example: alias a.smith@corp.example of echo@corp.example is "
      "also an address of cn=alice,ou=people,dc=corp,dc=example; left out"))
      << ::testing::PrintToString(reasons);
  EXPECT_FALSE(seen.count("clone@corp.example"));
  bool clone = false;
  for (const auto& x : r->rejected) {
    clone |=
        x.dn == "cn=clone,ou=people,dc=corp,dc=example" &&
        x.reason.find("is also that of cn=alice,ou=people,dc=corp,dc=example") != std::string::npos;
  }
  EXPECT_TRUE(clone) << ::testing::PrintToString(reasons);
}

// The administrator's way: `mailroster sync ldap ...` against the same slapd.
TEST_F(LdapSource, CliConfigureTestPreviewRunStatusAndFaults) {
  TempDir local;
  const auto db = local.file("m.db");
  const CorpCli cli(db);
  const auto s = slapd->settings(Security::ldaps);
  auto r = cli({"sync",
                "ldap",
                "configure",
                "--company",
                "corp",
                "--set",
                "host=127.0.0.1",
                "--set",
                "port=" + std::to_string(s.port),
                "--set",
                "security=ldaps",
                "--set",
                "ca_file=" + s.ca_file,
                "--set",
                "bind_dn=" + s.bind_dn,
                "--set",
                "base_dn=" + s.base_dn,
                "--set",
                "frequency_hours=24",
                "--set",
                "include_security_groups=true",
                "--secret-stdin",
                "--json"},
               slapd->password() + "\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.find(slapd->password()), std::string::npos);
  EXPECT_EQ(cli({"sync", "ldap", "test", "--company", "corp"}).status, 0);

  r = cli({"sync", "ldap", "preview", "--company", "corp", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto plan = nlohmann::json::parse(r.out);
  EXPECT_EQ(plan["counts"]["create"], 2507);  // active, functional and security groups
  EXPECT_EQ(plan["rejected"].size(), 1u);
  EXPECT_EQ(cli({"user", "list", "--company", "corp", "--json"}).out, "[]\n");  // a preview

  r = cli({"sync", "ldap", "run", "--company", "corp", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["created"], 2507);
  r = cli({"user", "list", "--company", "corp", "--search", "staff", "--json"});
  EXPECT_NE(r.out.find("\"role\": \"functional\""), std::string::npos) << r.out;

  // Never in the database file, the audit trail or the status in the clear.
  EXPECT_EQ(mailroster::testing::read_file(db).find(slapd->password()), std::string::npos);
  EXPECT_EQ(cli({"audit", "list", "--company", "corp", "--json"}).out.find(slapd->password()),
            std::string::npos);

  // A wrong password: the run fails with the reason, status keeps the last success.
  ASSERT_EQ(
      cli({"sync", "ldap", "configure", "--company", "corp", "--secret-stdin"}, "wrong\n").status,
      0);
  r = cli({"sync", "ldap", "run", "--company", "corp"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("invalid credentials"), std::string::npos) << r.err;
  auto st =
      nlohmann::json::parse(cli({"sync", "ldap", "status", "--company", "corp", "--json"}).out);
  EXPECT_FALSE(st["last_success"].is_null());
  EXPECT_NE(st["last_error"].get<std::string>().find("invalid credentials"), std::string::npos);
  EXPECT_FALSE(st.dump().find(slapd->password()) != std::string::npos);
  // Nothing listening: the same, and nothing was deleted even with delete on.
  ASSERT_EQ(cli({"sync", "ldap", "configure", "--company", "corp", "--set", "port=1", "--set",
                 "delete_removed=true", "--set", "network_timeout_seconds=2", "--secret-stdin"},
                slapd->password() + "\n")
                .status,
            0);
  r = cli({"sync", "ldap", "run", "--company", "corp"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("nothing was changed"), std::string::npos) << r.err;
  EXPECT_EQ(nlohmann::json::parse(cli({"user", "list", "--company", "corp", "--json"}).out).size(),
            2507u);
  // Bad settings are refused with the field's name.
  r = cli({"sync", "ldap", "configure", "--company", "corp", "--set", "security=tls"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("security"), std::string::npos) << r.err;
}

// `serve` runs a scheduled sync by itself (never ran: due at once) and logs the outcome.
TEST_F(LdapSource, ServeRunsDueSyncsOnItsScheduler) {
  TempDir local;
  const auto db = local.file("m.db");
  const CorpCli cli(db);
  const auto s = slapd->settings();
  ASSERT_EQ(cli({"sync", "ldap", "configure", "--company", "corp", "--set", "host=127.0.0.1",
                 "--set", "port=" + std::to_string(s.port), "--set", "bind_dn=" + s.bind_dn,
                 "--set", "base_dn=" + s.base_dn, "--set", "frequency_hours=1", "--secret-stdin"},
                slapd->password() + "\n")
                .status,
            0);
  mailroster::testing::write_file(
      local.file("c.toml"), "[database]\npath = \"" + db +
                                "\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[smtp]\ninbound_listen = "
                                "\"127.0.0.1:0\"\n[outbound]\nlisten = \"127.0.0.1:0\"\n"
                                "[maintenance]\nsync_check = \"1s\"\n");
  mailroster::testing::BackgroundProcess serve(MAILROSTER_BINARY,
                                               {"--config", local.file("c.toml"), "serve"});
  ASSERT_TRUE(serve.wait_for_err("sync ldap company=1: create=2505", std::chrono::seconds(20)))
      << serve.err();
  serve.signal(SIGTERM);
  EXPECT_EQ(serve.wait(std::chrono::seconds(10)), 0);
  const auto st =
      nlohmann::json::parse(cli({"sync", "ldap", "status", "--company", "corp", "--json"}).out);
  EXPECT_FALSE(st["last_success"].is_null());
  EXPECT_EQ(serve.err().find(slapd->password()), std::string::npos);  // never logged
}

// A slapd that looks like AD (rootDSE highestCommittedUSN and dsServiceName, uSNChanged on
// entries, an NTDS Settings invocationId): incremental runs through the sync service.
class LdapIncremental : public ::testing::Test {
 protected:
  LdapIncremental()
      : ad(dir.file("ad"), {"--ad", "--users", "20", "--big-group", "0"}),
        clock(core::parse_iso8601("2026-11-24T10:00:00Z").value()),
        store(dir.file("m.db"), clock),
        secrets(store::SecretBox::open_key_file(dir.file("key"))),
        service(store, secrets, clock) {
    service.add_source(source);
    corp = store.add_company({"corp", "", "", {}}, admin);
    store.add_domain(corp.id, "corp.example", core::Endpoint::parse("h").value(), admin);
  }
  void configure(const nlohmann::json& options) {
    service.configure(corp.id, core::Source::ldap, nlohmann::json(ad.settings()), options,
                      ad.password(), admin);
  }
  TempDir dir;
  Slapd ad;
  core::ManualClock clock;
  store::sqlite::SqliteStore store;
  store::SecretBox secrets;
  SyncService service;
  LdapDirectory source;
  const core::Actor admin{"admin:test"};
  core::Company corp;
};

TEST_F(LdapIncremental, ReadsOnlyChangesOnTheSameServerAndDeletesOnlyOnFullRuns) {
  configure({{"delete_removed", true}});

  auto first = service.run(corp.id, core::Source::ldap, false);
  EXPECT_FALSE(first.info["incremental"].get<bool>());
  EXPECT_EQ(first.result.creates, 25u);  // 20 bulk, alice, dave, info, room1, news
  ad.modify(
      "dn: cn=alice,ou=people,dc=corp,dc=example\nchangetype: modify\nreplace: sn\nsn: "
      "Changed\n-\nreplace: uSNChanged\nuSNChanged: 5001\n\n"
      "dn: cn=user00007,ou=people,dc=corp,dc=example\nchangetype: delete\n");
  auto second = service.run(corp.id, core::Source::ldap, false);
  EXPECT_TRUE(second.info["incremental"].get<bool>());
  EXPECT_EQ(second.result.updates, 1u);
  EXPECT_EQ(second.result.creates + second.result.skips, 0u);  // only alice was read
  EXPECT_EQ(second.result.deletes, 0u);                        // an incremental run never deletes
  EXPECT_EQ(store.find_user(core::Address::parse("alice@corp.example").value())->surname,
            "Changed");
  // Another server identity (a restored DC): a full run, which finds the removal.
  ad.modify(
      "dn: cn=NTDS Settings,ou=service,dc=corp,dc=example\nchangetype: modify\nreplace: "
      "invocationId\ninvocationId: another-server-id\n");
  auto third = service.run(corp.id, core::Source::ldap, false);
  EXPECT_FALSE(third.info["incremental"].get<bool>());
  EXPECT_EQ(third.result.deletes, 1u);
  EXPECT_FALSE(store.find_user(core::Address::parse("user00007@corp.example").value()));
}

// Incremental reads never see deletions, nor entries that a change of settings or options
// now brings in without their having changed: a full read at least every 24 hours, and after
// such a change.
TEST_F(LdapIncremental, ReadsEverythingDailyAndAfterAChangeOfWhatIsRead) {
  configure({{"delete_removed", true}, {"frequency_hours", 1}});
  auto status = [&] { return service.status(corp.id, core::Source::ldap); };
  EXPECT_EQ(status()["next_read"], "full");
  EXPECT_TRUE(status()["last_full_read"].is_null());
  auto incremental = [&](const RunReport& r) { return r.info["incremental"].get<bool>(); };

  EXPECT_FALSE(incremental(service.run(corp.id, core::Source::ldap, false)));
  EXPECT_EQ(status()["last_full_read"], "2026-11-24T10:00:00Z");
  EXPECT_EQ(status()["next_read"], "incremental");
  ad.modify("dn: cn=user00007,ou=people,dc=corp,dc=example\nchangetype: delete\n");
  clock.advance(std::chrono::hours(23));
  // Search Now as the next run reads misses the deletion; from the whole directory, finds it.
  auto preview = service.preview(corp.id, core::Source::ldap);
  EXPECT_TRUE(preview.info["incremental"].get<bool>());
  EXPECT_EQ(preview.result.deletes, 0u);
  preview = service.preview(corp.id, core::Source::ldap, {}, /*full=*/true);
  EXPECT_FALSE(preview.info["incremental"].get<bool>());
  EXPECT_EQ(preview.result.deletes, 1u);
  auto r = service.run(corp.id, core::Source::ldap, false);
  EXPECT_TRUE(incremental(r));
  EXPECT_EQ(r.result.deletes, 0u);
  EXPECT_TRUE(store.find_user(core::Address::parse("user00007@corp.example").value()));
  EXPECT_EQ(status()["last_full_read"], "2026-11-24T10:00:00Z");  // an incremental one

  clock.advance(std::chrono::hours(1));  // 24 hours since the full read
  EXPECT_EQ(status()["next_read"], "full");
  r = service.run(corp.id, core::Source::ldap, false);
  EXPECT_FALSE(incremental(r));
  EXPECT_EQ(r.result.deletes, 1u);
  EXPECT_FALSE(store.find_user(core::Address::parse("user00007@corp.example").value()));
  EXPECT_EQ(status()["last_full_read"], "2026-11-25T10:00:00Z");

  // The schedule and the guard's limits are not what is read: changes only, still.
  service.configure(corp.id, core::Source::ldap, nlohmann::json::object(),
                    {{"frequency_hours", 3}, {"max_delete_count", 50}}, std::nullopt, admin);
  EXPECT_EQ(status()["next_read"], "incremental");
  // Disabled accounts now included: bob has not changed, so only a full read finds him.
  service.configure(corp.id, core::Source::ldap, nlohmann::json::object(),
                    {{"include_disabled", true}}, std::nullopt, admin);
  EXPECT_EQ(status()["next_read"], "full");
  r = service.run(corp.id, core::Source::ldap, false);
  EXPECT_FALSE(incremental(r));
  EXPECT_TRUE(store.find_user(core::Address::parse("bob@corp.example").value()));
  // Another base DN, the same server: a full read again.
  service.configure(corp.id, core::Source::ldap, {{"base_dn", "ou=people,dc=corp,dc=example"}},
                    nlohmann::json::object(), std::nullopt, admin);
  EXPECT_EQ(status()["next_read"], "full");
  EXPECT_FALSE(incremental(service.run(corp.id, core::Source::ldap, true)));
  EXPECT_EQ(status()["next_read"], "incremental");
  // Asked for: a full read, whenever.
  clock.advance(std::chrono::hours(1));
  EXPECT_TRUE(incremental(service.run(corp.id, core::Source::ldap, false)));
  EXPECT_FALSE(incremental(service.run(corp.id, core::Source::ldap, false, /*full=*/true)));
  EXPECT_EQ(status()["last_full_read"], "2026-11-25T11:00:00Z");
}

// Last: it kills the suite's slapd (and starts a new one), twice.
TEST_F(LdapSync, ZzServerDyingMidSearchFailsTheRunAndDeletesNothing) {
  core::SyncOptions o;
  o.delete_removed = true;
  apply_plan(store, plan(o), false);
  const auto users = store.count_users(company.id);
  auto r =
      read_directory(slapd->settings(), slapd->password(), std::nullopt, {}, [&](std::size_t page) {
        if (page == 2) slapd->kill_now();
      });
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("page 3"), std::string::npos) << r.error().message;
  EXPECT_EQ(store.count_users(company.id), users);
  slapd->start();

  // A run writes each page while the next is read: the two pages written before the server
  // died are undone with the rest of the run's transaction.
  TempDir other;
  store::sqlite::SqliteStore fresh(other.file("m.db"), clock);
  const auto secrets = store::SecretBox::open_key_file(other.file("key"));
  SyncService service(fresh, secrets, clock);
  LdapDirectory source([&](std::size_t page) {
    if (page == 2) slapd->kill_now();
  });
  service.add_source(source);
  const auto corp = fresh.add_company({"corp", "", "", {}}, admin);
  fresh.add_domain(corp.id, "corp.example", core::Endpoint::parse("h").value(), admin);
  service.configure(corp.id, core::Source::ldap, nlohmann::json(slapd->settings()),
                    nlohmann::json::object(), slapd->password(), admin);
  try {
    service.run(corp.id, core::Source::ldap, false);
    ADD_FAILURE() << "the run succeeded";
  } catch (const core::Failure& f) {
    EXPECT_NE(std::string(f.what()).find("page 3"), std::string::npos) << f.what();
  }
  EXPECT_EQ(fresh.count_users(corp.id), 0u);
  for (const auto& e : fresh.list_audit({.company_id = corp.id, .limit = 10000})) {
    EXPECT_NE(e.action, "user.add") << e.object;
  }
  slapd->start();
}

}  // namespace
}  // namespace mailroster::directory::ldap
