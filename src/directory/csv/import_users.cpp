// import_users (csv_import.hpp): a user CSV read in batches on a second thread and planned,
// and applied in one transaction, by the sync every directory source uses. Apart from the
// reading (csv_import.cpp), which is pure and fuzzed on its own.
#include "directory/csv/csv_import.hpp"

namespace mailroster::directory::csv {

core::Result<ImportOutcome> import_users(store::Store& store, core::Id company_id, std::istream& in,
                                         const ImportMode& mode, const ImportSinks& sinks) {
  auto opened = UserCsvReader::open(in, store::domain_names(store, company_id));
  if (!opened) return opened.error();
  auto reader = std::move(opened).value();
  core::SyncOptions options;
  options.default_role = store.discovery_settings(company_id).default_role;
  options.include_functional = true;
  options.delete_removed = mode.delete_missing;

  ImportOutcome out;
  struct HeldBack {};  // bad rows, and no skip_invalid: undo what was written
  auto run = [&] {
    SyncRun sync(store, company_id, core::Source::csv, options, mode.apply, sinks.item);
    ReadAhead ahead(reader, in, 5000);
    while (auto batch = ahead.next()) {
      out.bad_rows += batch->errors.size();
      if (sinks.error) {
        for (const auto& e : batch->errors) sinks.error(e);
      }
      sync.add(batch->entries);
      if (sinks.progress) sinks.progress(batch->rows, batch->position);
    }
    out.result = sync.finish(true, mode.force);
    if (!mode.apply) return;
    if (out.bad_rows && !mode.skip_invalid) throw HeldBack{};
    if (mode.before_commit) mode.before_commit(out.result);
  };
  if (!mode.apply) {
    run();
  } else {
    try {
      store.atomically(run);
      out.applied = true;
    } catch (const HeldBack&) {
    }
  }
  out.rows = reader.rows();
  out.unknown_columns = reader.unknown_columns();
  out.separator = reader.separator();
  return out;
}

}  // namespace mailroster::directory::csv
