// Plans too large to hold in memory (a million-row CSV): their items are spooled to disk as the
// run reports them, to be printed once it is over (the CLI) or paged through while a previewed
// import waits to be applied (the API). A digest of a plan tells whether a second run planned
// exactly the same: an import previewed through the API is planned again when it is applied,
// and applied only if nothing changed in between.
#pragma once

#include <array>
#include <cstdio>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <sodium.h>
#include <nlohmann/json.hpp>

#include "core/sync_planner.hpp"
#include "directory/sync_apply.hpp"

namespace mailroster::directory {

// An anonymous temporary file, gone when it is closed. temporary_file() throws core::Failure
// (internal) when none can be made.
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using TempFile = std::unique_ptr<std::FILE, FileCloser>;
TempFile temporary_file();

// Records (any bytes, newlines too) in an anonymous temporary file.
// Reading seeks straight to a page: the offset of every 256th record is kept in memory.
class LineSpool {
 public:
  LineSpool();
  LineSpool(LineSpool&&) noexcept = default;
  LineSpool& operator=(LineSpool&&) noexcept = default;

  // Throws core::Failure (internal) when the disk is full.
  void append(std::string_view record);
  std::size_t size() const { return size_; }

  // Calls f with records [first, first + count), those there are. Not thread-safe (one file
  // position), like append.
  void read(std::size_t first, std::size_t count,
            const std::function<void(std::string_view)>& f) const;
  // Writes every record, separated; whether there were any.
  bool copy(std::ostream& out, const char* separator) const;

 private:
  TempFile file_;
  std::size_t size_ = 0;
  long end_ = 0;                // bytes written
  std::vector<long> offsets_;   // of records 0, 256, 512, ...
  mutable bool at_end_ = true;  // the file position is end_
};

// BLAKE2b over a run's row errors and plan items, in the order the run reports them: an item
// counts with its JSON and the user it concerns, an error with its line and message.
class PlanDigest {
 public:
  using Value = std::array<unsigned char, 32>;
  PlanDigest();
  void item(const core::PlanItem& item, std::string_view json);
  void error(std::size_t line, std::string_view message);
  Value value() const;

 private:
  void add(std::string_view bytes);
  crypto_generichash_state state_;
};

// A run's outcome, before its items: {source, counts: {create, update, delete, skip,
// company_users}, source_complete, guard}.
nlohmann::json summary_json(core::Source source, const RunResult& r);

}  // namespace mailroster::directory
