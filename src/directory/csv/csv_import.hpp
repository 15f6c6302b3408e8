// A CSV user list as a directory snapshot for the sync planner. Header row required, columns
// in any order: email (required), first_name, surname, role (end_user|silent_user),
// type (user|functional), aliases (';'-separated). Unknown columns are reported and ignored.
// Columns separated by commas, or by semicolons or tabs as spreadsheets write them.
// Every bad row is reported with its line number and reason: bad address, address outside the
// company's domains, unknown role or type, duplicate in the file, alias clash.
#pragma once

#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/first_claims.hpp"
#include "core/read_ahead.hpp"
#include "core/sync_planner.hpp"
#include "directory/csv/csv_reader.hpp"
#include "directory/sync_apply.hpp"
#include "store/store.hpp"

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

// Reads a user CSV batch by batch, so a file of any length is imported in bounded memory:
// what it keeps across batches is, per address, the line that used it first (to report
// duplicates and clashes), in 16 bytes (core::FirstClaims).
class UserCsvReader {
 public:
  // company_domains: lower-case domain names. Fails (invalid_argument) when the file as a
  // whole is unusable (no header, no email column, a column twice).
  static core::Result<UserCsvReader> open(std::istream& in, std::set<std::string> company_domains);

  // Up to max_entries good rows (empty at the end of the file); each bad row goes to on_error.
  std::vector<core::DirectoryEntry> next(std::size_t max_entries,
                                         const std::function<void(RowError)>& on_error);

  const std::vector<std::string>& unknown_columns() const { return unknown_columns_; }
  std::size_t rows() const { return rows_; }               // data rows read so far
  char separator() const { return reader_->separator(); }  // ',', ';' or '\t'  (csv_reader.hpp)

 private:
  enum Column { kEmail, kFirstName, kSurname, kRole, kType, kAliases, kColumns };
  explicit UserCsvReader(std::istream& in) : reader_(std::make_unique<CsvReader>(in)) {}
  std::optional<core::DirectoryEntry> entry(const Record& rec,
                                            const std::function<void(RowError)>& on_error);

  std::unique_ptr<CsvReader> reader_;
  std::set<std::string> domains_;
  int index_[kColumns];
  std::size_t header_fields_ = 0;
  std::vector<std::string> unknown_columns_;
  core::FirstClaims seen_;  // addresses, by the line that used each first
  std::size_t rows_ = 0;
};

// Reads ahead on its own thread: the next batches are parsed and checked while the caller
// plans and writes the current one (an import uses both cores). At most `depth` batches wait.
// Exceptions on the reading thread come out of next().
class ReadAhead {
 public:
  struct Batch {
    std::vector<core::DirectoryEntry> entries;
    std::vector<RowError> errors;
    std::size_t rows = 0;          // data rows read so far, this batch included
    std::streamoff position = -1;  // bytes of the file read so far (-1: not known)
  };
  // Stops the thread when destroyed: a caller that gives up early does not wait for the file.
  ReadAhead(UserCsvReader& reader, std::istream& in, std::size_t batch_size, std::size_t depth = 2);

  // The next batch; nullopt at the end of the file.
  std::optional<Batch> next() { return ahead_.next(); }

 private:
  core::ReadAhead<Batch> ahead_;
};

// How an import runs: planned only, or applied as one transaction.
struct ImportMode {
  bool apply = false;
  bool delete_missing = false;  // delete the company's CSV-imported users not in the file
  bool force = false;           // apply past the deletion guard
  bool skip_invalid = false;    // apply the good rows even when some are bad
  // When applying, called last inside the transaction; what it throws undoes the import.
  std::function<void(const RunResult&)> before_commit;
};

struct ImportSinks {
  SyncRun::Sink item;                          // every plan item (SyncRun's order and threads)
  std::function<void(const RowError&)> error;  // every bad row, in file order
  std::function<void(std::size_t rows, std::streamoff position)> progress;  // a batch read
};

struct ImportOutcome {
  RunResult result;
  std::size_t rows = 0;  // data rows read
  std::size_t bad_rows = 0;
  std::vector<std::string> unknown_columns;
  bool applied = false;  // false when only planned, or held back by bad rows
  char separator = ',';  // what the header line used
};

// A CSV import, for the CLI and the API alike: the file is parsed on a second thread while
// this one plans (and writes) batch by batch, so that a file of any length takes bounded
// memory. New users get the company's default discovery role. The file is read to its end
// even when a bad row holds the import back, so that every bad row is reported at once.
// Fails (invalid_argument) when the file as a whole is unusable; when applying, throws
// core::Failure (conflict) when the deletion guard refuses, and whatever before_commit throws.
core::Result<ImportOutcome> import_users(store::Store& store, core::Id company_id, std::istream& in,
                                         const ImportMode& mode, const ImportSinks& sinks);

// The whole file at once (small files, tests). progress, when set, is called every 10,000 rows.
core::Result<CsvSnapshot> read_user_csv(std::istream& in,
                                        const std::set<std::string>& company_domains,
                                        const std::function<void(std::size_t)>& progress = {});

}  // namespace mailroster::directory::csv
