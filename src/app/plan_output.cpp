#include "app/plan_output.hpp"

#include "core/error.hpp"
#include "core/json.hpp"

namespace mailroster::app {

PlanOutput::PlanOutput(bool json) : json_(json) {}

void PlanOutput::item(const core::PlanItem& item) {
  auto& spool = items_[static_cast<int>(item.action)];
  if (json_) return spool.append(nlohmann::json(item).dump());
  std::string line = "  " + std::string(core::to_string(item.action)) + " " + item.address.str();
  for (const auto& ch : item.changes) {
    line += " " + ch.field + ": '" + ch.before + "' -> '" + ch.after + "'";
  }
  for (const auto& a : item.add_aliases) line += " +alias " + a.str();
  for (const auto& a : item.remove_aliases) line += " -alias " + a.str();
  if (item.action == core::PlanItem::Action::skip) line += " (" + item.reason + ")";
  spool.append(line);
}

void PlanOutput::row_error(std::size_t line, const std::string& message) {
  if (json_) return errors_.append(nlohmann::json{{"line", line}, {"error", message}}.dump());
  errors_.append("  line " + std::to_string(line) + ": " + message);
}

void PlanOutput::print(std::ostream& out, core::Source source, const directory::RunResult& r,
                       const std::string& headline, const std::vector<std::string>& notes,
                       const nlohmann::json& extra) const {
  if (!json_) {
    out << headline << ": " << r.creates << " to create, " << r.updates << " to update, "
        << r.deletes << " to delete, " << r.skips << " skipped";
    if (row_errors()) out << ", " << row_errors() << " bad rows";
    out << "\n";
    for (const auto& n : notes) out << "  " << n << "\n";
    if (errors_.copy(out, "\n")) out << "\n";
    if (r.guard) out << "  deletion guard: " << *r.guard << "\n";
    for (const auto& spool : items_) {
      if (spool.copy(out, "\n")) out << "\n";
    }
    return;
  }
  auto head = directory::summary_json(source, r);
  head.update(extra);
  // The head's fields, then the spooled lists; one item per line.
  auto text = head.dump(2);
  text.resize(text.rfind('}'));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  out << text;
  const char* names[] = {"creates", "updates", "deletes", "skips"};
  for (int i = 0; i < 4; ++i) {
    out << ",\n  \"" << names[i] << "\": [\n    ";
    items_[i].copy(out, ",\n    ");
    out << "\n  ]";
  }
  out << ",\n  \"errors\": [\n    ";
  errors_.copy(out, ",\n    ");
  out << "\n  ]\n}\n";
}

}  // namespace mailroster::app
