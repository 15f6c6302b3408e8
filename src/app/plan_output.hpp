// Printing a sync plan that may be too large to hold in memory (a million-row CSV): items and
// row errors are spooled to disk (directory::LineSpool) as the run reports them, and printed
// after the counts once it is over: text (counts, then one line per item) or JSON.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/sync_planner.hpp"
#include "directory/plan_spool.hpp"
#include "directory/sync_apply.hpp"

namespace mailroster::app {

class PlanOutput {
 public:
  explicit PlanOutput(bool json);

  void item(const core::PlanItem& item);
  void row_error(std::size_t line, const std::string& message);
  std::size_t row_errors() const { return errors_.size(); }

  // headline: the first text line; notes: lines after it (unknown columns, ...). extra: more
  // top-level JSON fields (rows, applied, ...).
  void print(std::ostream& out, core::Source source, const directory::RunResult& result,
             const std::string& headline, const std::vector<std::string>& notes,
             const nlohmann::json& extra) const;

 private:
  bool json_;
  directory::LineSpool items_[4];  // create, update, delete, skip
  directory::LineSpool errors_;
};

}  // namespace mailroster::app
