// Printing a sync plan that may be too large to hold in memory (a million-row CSV): items and
// row errors are spooled to anonymous temporary files as the run reports them, and printed
// after the counts once it is over: text (counts, then one line per item) or JSON.
#pragma once

#include <cstdio>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/sync_planner.hpp"
#include "directory/sync_apply.hpp"

namespace mailroster::app {

class PlanOutput {
 public:
  explicit PlanOutput(bool json);

  void item(const core::PlanItem& item);
  void row_error(std::size_t line, const std::string& message);
  std::size_t row_errors() const { return row_errors_; }

  // headline: the first text line; notes: lines after it (unknown columns, ...). extra: more
  // top-level JSON fields (rows, applied, ...).
  void print(std::ostream& out, core::Source source, const directory::RunResult& result,
             const std::string& headline, const std::vector<std::string>& notes,
             const nlohmann::json& extra) const;

 private:
  struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  using Spool = std::unique_ptr<std::FILE, FileCloser>;
  static void write(const Spool& spool, const std::string& line);
  // Copies the spooled lines, separated; whether there were any.
  static bool copy(const Spool& spool, std::ostream& out, const char* separator);

  bool json_;
  Spool items_[4];  // create, update, delete, skip
  Spool errors_;
  std::size_t row_errors_ = 0;
};

}  // namespace mailroster::app
