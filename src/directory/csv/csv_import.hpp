// A CSV user list as a directory snapshot for the sync planner. Header row required, columns
// in any order: email (required), first_name, surname, role (end_user|silent_user),
// type (user|functional), aliases (';'-separated). Unknown columns are reported and ignored.
// Every bad row is reported with its line number and reason: bad address, address outside the
// company's domains, unknown role or type, duplicate in the file, alias clash.
#pragma once

#include <functional>
#include <istream>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/sync_planner.hpp"

namespace mailroster::directory::csv {

struct RowError {
  std::size_t line = 0;
  std::string message;
};

struct CsvSnapshot {
  core::Snapshot snapshot;  // the good rows
  std::vector<RowError> errors;
  std::vector<std::string> unknown_columns;
  std::size_t rows = 0;  // data rows read
};

// company_domains: lower-case domain names; progress, when set, is called every 10,000 rows.
// Fails (invalid_argument) only when the file as a whole is unusable (no header, no email
// column, a column twice).
core::Result<CsvSnapshot> read_user_csv(std::istream& in,
                                        const std::set<std::string>& company_domains,
                                        const std::function<void(std::size_t)>& progress = {});

}  // namespace mailroster::directory::csv
