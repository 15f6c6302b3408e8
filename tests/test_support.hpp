// Helpers shared by the tests: a temporary directory removed at the end of the test, and a
// runner for the built binary that captures its exit status and output.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace mailroster::testing {

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

void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);

}  // namespace mailroster::testing
