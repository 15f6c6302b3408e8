#include "test_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "directory/sync_apply.hpp"

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

long claim_mismatches(const std::string& db_path) {
  sqlite3* db = nullptr;
  if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK) {
    sqlite3_close(db);
    return -1;
  }
  const char* sql =
      "WITH held(address_key, kind, owner) AS (SELECT address_key, 'user', id FROM users UNION "
      "ALL SELECT address_key, 'alias', id FROM aliases UNION ALL SELECT address_key, 'invalid', "
      "id FROM invalid_addresses) SELECT (SELECT count(*) FROM (SELECT address_key, kind, owner "
      "FROM address_claims EXCEPT SELECT address_key, kind, owner FROM held)) + (SELECT count(*) "
      "FROM (SELECT address_key, kind, owner FROM held EXCEPT SELECT address_key, kind, owner "
      "FROM address_claims)) + abs((SELECT count(*) FROM held) - (SELECT count(*) FROM "
      "address_claims))";
  sqlite3_stmt* stmt = nullptr;
  long out = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    out = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
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
