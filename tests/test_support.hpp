// Helpers shared by the tests: a temporary directory removed at the end of the test, a runner
// for the built binary that captures its exit status and output, and plans held whole.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/sync_planner.hpp"
#include "store/sql/sql_store.hpp"
#include "store/store.hpp"

namespace mailroster::testing {

// Expects f to throw core::Failure with this code and a message containing text.
template <class F>
void expect_failure(F&& f, core::ErrorCode code, const std::string& text) {
  try {
    f();
    ADD_FAILURE() << "no failure; expected " << core::to_string(code) << ": " << text;
  } catch (const core::Failure& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int status = -1;  // exit status, or 128 + signal
  std::string out;
  std::string err;
};

// Runs program with args (no shell), feeding stdin_text, and waits for it.
CommandResult run_command(const std::string& program, const std::vector<std::string>& args,
                          const std::string& stdin_text = "");

// A program running in the background with its stdout and stderr going to files.
class BackgroundProcess {
 public:
  BackgroundProcess(const std::string& program, const std::vector<std::string>& args);
  ~BackgroundProcess();  // SIGKILL if still running
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  std::string err() const;
  std::string out() const;
  // Waits up to timeout for text to appear on stderr; returns whether it did.
  bool wait_for_err(const std::string& text, std::chrono::milliseconds timeout) const;
  void signal(int sig) const;
  int pid() const { return pid_; }
  // Waits up to timeout for exit; returns the exit status (128 + signal), or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);

 private:
  TempDir dir_;
  int pid_ = -1;
  int status_ = -1;
};

// One HTTP/1.1 GET to 127.0.0.1:port; returns status code and body (status 0 if no answer).
struct HttpResult {
  int status = 0;
  std::string body;
};
HttpResult http_get(int port, const std::string& path);

// A fresh database for a test: a SQLite file in a directory of its own, or a schema of its own
// in the tests' PostgreSQL server (tests/postgres/pg_fixture.py, which ctest starts for the tests
// named *Postgres*; its address is read from the file the fixture writes).
class TestDatabase {
 public:
  explicit TestDatabase(store::sql::Dialect dialect);
  store::sql::Dialect dialect() const { return dialect_; }
  // What --db takes: the SQLite file, or the PostgreSQL connection string.
  const std::string& location() const { return location_; }
  // A store on it (each call another, as another process or node would have).
  std::unique_ptr<store::sql::SqlStore> open(const core::Clock& clock) const;
  // A connection of its own, for SQL behind the store's back.
  std::unique_ptr<store::sql::Database> connect() const;

 private:
  store::sql::Dialect dialect_;
  TempDir dir_;
  std::string location_;
};

// "SQLite" or "Postgres": a parameterised test's name suffix.
std::string dialect_name(store::sql::Dialect dialect);

// How far a mailroster database's address claims are from exactly the addresses of its users,
// aliases and invalid addresses (claims missing, left over or of the wrong kind): 0 when they
// match.
long claim_mismatches(store::sql::Database& db);
long claim_mismatches(const std::string& sqlite_path);

// A snapshot's whole plan as one value (nothing written), by the sync's own planning
// (directory::SyncRun), and such a plan applied at once in one transaction, with the source as
// actor. Throws core::Failure (conflict) when the guard refuses and force is false, or when a
// change no longer fits. Tests drive the planner and the store this way, without a source.
core::Plan plan_for(store::Store& store, core::Id company_id, const core::Snapshot& snapshot,
                    const core::SyncOptions& options);
struct Applied {
  std::size_t created = 0, updated = 0, deleted = 0;
};
Applied apply_plan(store::Store& store, const core::Plan& plan, bool force);

void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);

// A thread inside store.atomically(): it runs `inside`, then holds the transaction open until
// release() (or its destruction), as a long import or directory sync does.
class HeldWrite {
 public:
  HeldWrite(store::Store& store, std::function<void()> inside)
      : thread_([this, &store, inside = std::move(inside)] {
          store.atomically([&] {
            inside();
            std::unique_lock lock(m_);
            inside_ = true;
            cv_.notify_all();
            cv_.wait(lock, [&] { return release_; });
          });
        }) {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return inside_; });
  }
  ~HeldWrite() { release(); }
  HeldWrite(const HeldWrite&) = delete;
  HeldWrite& operator=(const HeldWrite&) = delete;
  void release() {
    {
      std::lock_guard lock(m_);
      release_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool inside_ = false, release_ = false;
  std::thread thread_;  // last: started once the rest is made
};

}  // namespace mailroster::testing
