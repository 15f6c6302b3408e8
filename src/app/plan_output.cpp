#include "app/plan_output.hpp"

#include "core/error.hpp"
#include "core/json.hpp"

namespace mailroster::app {

namespace {

std::FILE* temporary() {
  std::FILE* f = std::tmpfile();
  if (!f) throw core::Failure(core::ErrorCode::internal, "cannot create a temporary file");
  return f;
}

}  // namespace

PlanOutput::PlanOutput(bool json) : json_(json), errors_(temporary()) {
  for (auto& s : items_) s.reset(temporary());
}

void PlanOutput::write(const Spool& spool, const std::string& line) {
  if (std::fwrite(line.data(), 1, line.size(), spool.get()) != line.size() ||
      std::fputc('\n', spool.get()) == EOF) {
    throw core::Failure(core::ErrorCode::internal, "cannot write a temporary file (disk full?)");
  }
}

bool PlanOutput::copy(const Spool& spool, std::ostream& out, const char* separator) {
  std::fflush(spool.get());
  std::rewind(spool.get());
  char buf[8192];
  bool first = true;
  std::string line;
  while (std::fgets(buf, sizeof buf, spool.get())) {
    line += buf;
    if (line.back() != '\n') continue;
    line.pop_back();
    if (!first) out << separator;
    out << line;
    first = false;
    line.clear();
  }
  return !first;
}

void PlanOutput::item(const core::PlanItem& item) {
  const auto& spool = items_[static_cast<int>(item.action)];
  if (json_) return write(spool, nlohmann::json(item).dump());
  std::string line = "  " + std::string(core::to_string(item.action)) + " " + item.address.str();
  for (const auto& ch : item.changes) {
    line += " " + ch.field + ": '" + ch.before + "' -> '" + ch.after + "'";
  }
  for (const auto& a : item.add_aliases) line += " +alias " + a.str();
  for (const auto& a : item.remove_aliases) line += " -alias " + a.str();
  if (item.action == core::PlanItem::Action::skip) line += " (" + item.reason + ")";
  write(spool, line);
}

void PlanOutput::row_error(std::size_t line, const std::string& message) {
  ++row_errors_;
  if (json_) return write(errors_, nlohmann::json{{"line", line}, {"error", message}}.dump());
  write(errors_, "  line " + std::to_string(line) + ": " + message);
}

void PlanOutput::print(std::ostream& out, core::Source source, const directory::RunResult& r,
                       const std::string& headline, const std::vector<std::string>& notes,
                       const nlohmann::json& extra) const {
  if (!json_) {
    out << headline << ": " << r.creates << " to create, " << r.updates << " to update, "
        << r.deletes << " to delete, " << r.skips << " skipped";
    if (row_errors_) out << ", " << row_errors_ << " bad rows";
    out << "\n";
    for (const auto& n : notes) out << "  " << n << "\n";
    if (copy(errors_, out, "\n")) out << "\n";
    if (r.guard) out << "  deletion guard: " << *r.guard << "\n";
    for (const auto& spool : items_) {
      if (copy(spool, out, "\n")) out << "\n";
    }
    return;
  }
  nlohmann::json head = {{"source", core::to_string(source)},
                         {"counts",
                          {{"create", r.creates},
                           {"update", r.updates},
                           {"delete", r.deletes},
                           {"skip", r.skips},
                           {"company_users", r.company_users}}},
                         {"source_complete", r.source_complete},
                         {"guard", r.guard ? nlohmann::json(*r.guard) : nlohmann::json(nullptr)}};
  head.update(extra);
  // The head's fields, then the spooled lists; one item per line.
  auto text = head.dump(2);
  text.resize(text.rfind('}'));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  out << text;
  const char* names[] = {"creates", "updates", "deletes", "skips"};
  for (int i = 0; i < 4; ++i) {
    out << ",\n  \"" << names[i] << "\": [\n    ";
    copy(items_[i], out, ",\n    ");
    out << "\n  ]";
  }
  out << ",\n  \"errors\": [\n    ";
  copy(errors_, out, ",\n    ");
  out << "\n  ]\n}\n";
}

}  // namespace mailroster::app
