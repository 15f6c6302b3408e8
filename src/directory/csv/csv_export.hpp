// A company's users written as a user CSV in the very format `import csv` reads
// (csv_import.hpp): email, first_name, surname, role, type, aliases. An exported file imported
// back into the same company plans no change, so an administrator can export, edit the file
// in a spreadsheet and import it again with a preview.
//
// Fields are quoted per RFC 4180 where they need it (comma, quote, line break). A field that
// a spreadsheet would take for a formula (one starting with = + - @, a tab or a carriage
// return, after any apostrophes) gets one apostrophe in front, as OWASP advises against CSV
// injection: a name an end user chose for itself cannot run in its administrator's
// spreadsheet. The import takes that apostrophe off again (formula_guard / unguard).
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/model.hpp"
#include "store/store.hpp"

namespace mailroster::directory::csv {

// The header row, CRLF-terminated.
std::string user_csv_header();

// One user's row, CRLF-terminated. Functional accounts have an empty role and type
// "functional"; users have their role and type "user". Aliases are joined by ';' (a quoted
// local part keeps a ';' of its own inside its quotes, where the import does not split).
std::string user_csv_row(const core::User& user, const std::vector<core::Address>& aliases);

// One field as the file holds it: the formula guard, then RFC 4180 quoting where needed.
std::string csv_field(std::string_view value);

// True when a spreadsheet would read the value (after its leading apostrophes) as a formula.
bool formula_guard(std::string_view value);
// What the import makes of a field: one apostrophe the export put in front is taken off.
std::string_view unguard(std::string_view field);

// A company's users (by address) with their aliases, header first; with bom, a UTF-8 byte
// order mark before it (spreadsheets read the file as UTF-8 only then; the import skips it).
// Returns the rows written.
std::size_t export_users(store::Store& store, core::Id company_id, std::ostream& out,
                         bool bom = false);

}  // namespace mailroster::directory::csv
