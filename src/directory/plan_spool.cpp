#include "directory/plan_spool.hpp"

#include <cstdint>
#include <cstring>

#include "core/error.hpp"

namespace mailroster::directory {

namespace {

constexpr std::size_t kEvery = 256;  // records between kept offsets

[[noreturn]] void fail(const char* what) {
  throw core::Failure(core::ErrorCode::internal, std::string(what) + " a temporary file");
}

}  // namespace

TempFile temporary_file() {
  TempFile f(std::tmpfile());
  if (!f) fail("cannot create");
  return f;
}

LineSpool::LineSpool() : file_(temporary_file()) {}

void LineSpool::append(std::string_view record) {
  if (size_ % kEvery == 0) offsets_.push_back(end_);
  // After a read, the file position is elsewhere (and C requires a seek between the two). Only
  // then: a seek flushes the stream's buffer.
  if (!at_end_ && std::fseek(file_.get(), end_, SEEK_SET) != 0) fail("cannot write");
  at_end_ = true;
  const auto length = static_cast<std::uint32_t>(record.size());
  if (std::fwrite(&length, sizeof length, 1, file_.get()) != 1 ||
      std::fwrite(record.data(), 1, record.size(), file_.get()) != record.size()) {
    fail("cannot write (disk full?)");
  }
  end_ += static_cast<long>(sizeof length + record.size());
  ++size_;
}

void LineSpool::read(std::size_t first, std::size_t count,
                     const std::function<void(std::string_view)>& f) const {
  if (first >= size_ || count == 0) return;
  count = std::min(count, size_ - first);
  std::FILE* file = file_.get();
  at_end_ = false;
  if (std::fseek(file, offsets_[first / kEvery], SEEK_SET) != 0) fail("cannot read");
  std::string record;
  for (std::size_t i = first - first % kEvery; i < first + count; ++i) {
    std::uint32_t length = 0;
    if (std::fread(&length, sizeof length, 1, file) != 1) fail("cannot read");
    if (i < first) {
      if (std::fseek(file, length, SEEK_CUR) != 0) fail("cannot read");
      continue;
    }
    record.resize(length);
    if (std::fread(record.data(), 1, length, file) != length) fail("cannot read");
    f(record);
  }
}

bool LineSpool::copy(std::ostream& out, const char* separator) const {
  bool first = true;
  read(0, size_, [&](std::string_view record) {
    if (!first) out << separator;
    out << record;
    first = false;
  });
  return !first;
}

PlanDigest::PlanDigest() { crypto_generichash_init(&state_, nullptr, 0, Value().size()); }

void PlanDigest::add(std::string_view bytes) {
  // Each part with its length, so that no two sequences of parts hash alike.
  const std::uint64_t length = bytes.size();
  crypto_generichash_update(&state_, reinterpret_cast<const unsigned char*>(&length),
                            sizeof length);
  crypto_generichash_update(&state_, reinterpret_cast<const unsigned char*>(bytes.data()),
                            bytes.size());
}

void PlanDigest::item(const core::PlanItem& item, std::string_view json) {
  add("item");
  add(json);
  add(item.user_id ? std::to_string(*item.user_id) : "");
}

void PlanDigest::error(std::size_t line, std::string_view message) {
  add("error");
  add(std::to_string(line));
  add(message);
}

PlanDigest::Value PlanDigest::value() const {
  auto copy = state_;
  Value out;
  crypto_generichash_final(&copy, out.data(), out.size());
  return out;
}

nlohmann::json summary_json(core::Source source, const RunResult& r) {
  return {{"source", core::to_string(source)},
          {"counts",
           {{"create", r.creates},
            {"update", r.updates},
            {"delete", r.deletes},
            {"skip", r.skips},
            {"company_users", r.company_users}}},
          {"source_complete", r.source_complete},
          {"guard", r.guard ? nlohmann::json(*r.guard) : nlohmann::json(nullptr)}};
}

}  // namespace mailroster::directory
