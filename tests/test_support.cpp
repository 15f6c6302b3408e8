#include "test_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/json.hpp"
#include "directory/sync_apply.hpp"
#include "store/postgres/pg_db.hpp"
#include "store/postgres/postgres_store.hpp"
#include "store/sqlite/sqlite_db.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace mailroster::testing {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "mailroster-test-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

namespace {
pid_t spawn(const std::string& program, const std::vector<std::string>& args,
            const std::string& in_path, const std::string& out_path, const std::string& err_path) {
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int in = open(in_path.c_str(), O_RDONLY);
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(program.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

int decode_status(int wstatus) {
  return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}
}  // namespace

BackgroundProcess::BackgroundProcess(const std::string& program,
                                     const std::vector<std::string>& args) {
  write_file(dir_.file("stdin"), "");
  pid_ = spawn(program, args, dir_.file("stdin"), dir_.file("stdout"), dir_.file("stderr"));
}

BackgroundProcess::~BackgroundProcess() {
  if (status_ < 0 && pid_ > 0) {
    kill(pid_, SIGKILL);
    int ws = 0;
    waitpid(pid_, &ws, 0);
  }
}

std::string BackgroundProcess::err() const { return read_file(dir_.file("stderr")); }
std::string BackgroundProcess::out() const { return read_file(dir_.file("stdout")); }

bool BackgroundProcess::wait_for_err(const std::string& text,
                                     std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (err().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return err().find(text) != std::string::npos;
}

void BackgroundProcess::signal(int sig) const { kill(pid_, sig); }

int BackgroundProcess::wait(std::chrono::milliseconds timeout) {
  if (status_ >= 0) return status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int ws = 0;
    if (waitpid(pid_, &ws, WNOHANG) == pid_) {
      status_ = decode_status(ws);
      return status_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

HttpResult http_get(int port, const std::string& path) {
  HttpResult result;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return result;
  }
  const std::string req =
      "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (send(fd, req.data(), req.size(), 0) < 0) {
    close(fd);
    return result;
  }
  std::string raw;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;)
    raw.append(buf, static_cast<std::size_t>(n));
  close(fd);
  if (raw.rfind("HTTP/1.1 ", 0) == 0) result.status = std::stoi(raw.substr(9, 3));
  const auto body = raw.find("\r\n\r\n");
  if (body != std::string::npos) result.body = raw.substr(body + 4);
  return result;
}

CommandResult run_command(const std::string& program, const std::vector<std::string>& args,
                          const std::string& stdin_text) {
  TempDir dir;
  write_file(dir.file("stdin"), stdin_text);
  const pid_t pid = spawn(program, args, dir.file("stdin"), dir.file("stdout"), dir.file("stderr"));
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  return CommandResult{decode_status(wstatus), read_file(dir.file("stdout")),
                       read_file(dir.file("stderr"))};
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary);
  f << content;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

namespace {

// The tests' PostgreSQL server, as the fixture wrote it down.
std::string postgres_server() {
  std::ifstream in(MAILROSTER_TEST_POSTGRES_FILE);
  if (!in) {
    throw std::runtime_error(std::string("no test PostgreSQL server: ") +
                             MAILROSTER_TEST_POSTGRES_FILE +
                             " is missing (ctest starts one for the *Postgres* tests; by hand: "
                             "tests/postgres/pg_fixture.py start <that file>)");
  }
  return nlohmann::json::parse(in).at("conninfo").get<std::string>();
}

}  // namespace

std::string dialect_name(store::sql::Dialect dialect) {
  return dialect == store::sql::Dialect::sqlite ? "SQLite" : "Postgres";
}

TestDatabase::TestDatabase(store::sql::Dialect dialect) : dialect_(dialect) {
  if (dialect == store::sql::Dialect::sqlite) {
    location_ = dir_.file("state.db");
    return;
  }
  static std::atomic<int> counter{0};
  const auto schema =
      "t" + std::to_string(::getpid()) + "_" + std::to_string(++counter) + "_" +
      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
  const auto server = postgres_server();
  store::postgres::Database(server).exec("CREATE SCHEMA " + schema);
  location_ = server + " options='-c search_path=" + schema + "'";
}

std::unique_ptr<store::sql::SqlStore> TestDatabase::open(const core::Clock& clock) const {
  if (dialect_ == store::sql::Dialect::sqlite) {
    return std::make_unique<store::sqlite::SqliteStore>(location_, clock);
  }
  return std::make_unique<store::postgres::PostgresStore>(location_, clock);
}

std::unique_ptr<store::sql::Database> TestDatabase::connect() const {
  if (dialect_ == store::sql::Dialect::sqlite) {
    return std::make_unique<store::sqlite::Database>(location_);
  }
  return std::make_unique<store::postgres::Database>(location_);
}

long claim_mismatches(store::sql::Database& db) {
  auto s = db.prepare(
      "WITH held(address_key, kind, owner) AS (SELECT address_key, 'user', id FROM users UNION "
      "ALL SELECT address_key, 'alias', id FROM aliases UNION ALL SELECT address_key, 'invalid', "
      "id FROM invalid_addresses) SELECT (SELECT count(*) FROM (SELECT address_key, kind, owner "
      "FROM address_claims EXCEPT SELECT address_key, kind, owner FROM held) x) + (SELECT "
      "count(*) FROM (SELECT address_key, kind, owner FROM held EXCEPT SELECT address_key, kind, "
      "owner FROM address_claims) y) + abs((SELECT count(*) FROM held) - (SELECT count(*) FROM "
      "address_claims))");
  return s.step() ? static_cast<long>(s.int64(0)) : -1;
}

long claim_mismatches(const std::string& sqlite_path) {
  store::sqlite::Database db(sqlite_path);
  return claim_mismatches(db);
}

core::Plan plan_for(store::Store& store, core::Id company_id, const core::Snapshot& snapshot,
                    const core::SyncOptions& options) {
  core::Plan plan;
  plan.source = snapshot.source;
  directory::SyncRun run(store, company_id, snapshot.source, options, false,
                         [&](const core::PlanItem& i) {
                           using A = core::PlanItem::Action;
                           auto& list = i.action == A::create   ? plan.creates
                                        : i.action == A::update ? plan.updates
                                        : i.action == A::remove ? plan.deletes
                                                                : plan.skips;
                           list.push_back(i);
                         });
  run.add(snapshot.entries);
  const auto r = run.finish(snapshot.complete, false, snapshot.removed);
  plan.company_users = r.company_users;
  plan.source_complete = r.source_complete;
  plan.guard = r.guard;
  return plan;
}

Applied apply_plan(store::Store& store, const core::Plan& plan, bool force) {
  if (plan.guard && !force) {
    throw core::Failure(core::ErrorCode::conflict, "deletion guard: the sync " + *plan.guard);
  }
  store.apply_plan(plan, core::Actor{"sync:" + std::string(core::to_string(plan.source))});
  return {plan.creates.size(), plan.updates.size(), plan.deletes.size()};
}

}  // namespace mailroster::testing
