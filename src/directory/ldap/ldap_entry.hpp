// Active Directory entries as directory entries for the sync planner: the pure half of the
// LDAP source (no I/O), so every rule about AD's attributes is tested on its own.
//
//  - proxyAddresses (directory/proxy_addresses.hpp): the "SMTP:" value is the primary; "smtp:" are
//    aliases, every other type (X500:, SIP:, X400:, ...) is never a mail address; without an
//    SMTP: value, `mail` is the primary. An entry is never its own alias.
//  - userAccountControl bit 0x2: disabled. msExchHideFromAddressLists TRUE: hidden.
//    msExchRecipientTypeDetails shared (0x4), room (0x10) or equipment (0x20) mailbox:
//    functional account.
//  - groupType: the security bit is 0x80000000, which AD returns as a negative number.
//  - identity: objectGUID (16 bytes, shown in AD's GUID form), else entryUUID.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/sync_planner.hpp"
#include "directory/proxy_addresses.hpp"

namespace mailroster::directory::ldap {

// Attribute name (lower case, options such as ";range=0-1499" kept) -> values (raw bytes).
using Attributes = std::map<std::string, std::vector<std::string>>;

// AD's GUID text form (the first three fields little-endian); nullopt unless 16 bytes.
std::optional<std::string> guid_text(const std::string& bytes);

// An LDAP integer (AD writes groupType and userAccountControl as signed 32-bit decimals).
std::optional<std::int64_t> parse_integer(const std::string& text);
bool is_security_group(std::int64_t group_type);

// One entry read from the directory. Fails (with the reason, for the preview's skip list)
// when it has no usable mail address.
core::Result<core::DirectoryEntry> to_entry(const Attributes& attrs, bool is_group);

// RFC 4515: a value placed in a search filter, with * ( ) \ NUL and non-ASCII bytes escaped.
std::string escape_filter_value(const std::string& value);

// AD range retrieval ("member;range=0-1499"): the range of a returned attribute, and the
// attribute to ask for next (nullopt when this was the last part, "...-*").
struct Range {
  std::size_t first = 0;
  std::optional<std::size_t> last;  // nullopt: '*', the final part
};
std::optional<Range> parse_range(const std::string& attribute, const std::string& base);
// Finds base's values in attrs, plain or ranged; next_request is set when more remain.
struct RangedValues {
  std::vector<std::string> values;
  std::optional<std::string> next_request;  // e.g. "member;range=1500-*"
};
RangedValues ranged_values(const Attributes& attrs, const std::string& base);

// Nested groups: for each group DN, every non-group member DN reachable through member
// groups (cycles are safe). DNs compare case-insensitively.
std::map<std::string, std::set<std::string>> resolve_members(
    const std::map<std::string, std::vector<std::string>>& direct_members);

std::string normalize_dn(const std::string& dn);

// Incremental runs (AD): after a full run the server's highestCommittedUSN and invocationID
// are kept; the next run reads only entries with a higher uSNChanged when the server is the
// same one. Deletes are found only by full runs.
struct ServerState {
  std::string invocation_id;
  std::optional<std::int64_t> highest_usn;  // nullopt: not AD (no incremental runs)
};
// The filter for an incremental run, or nullopt when this run must be full.
std::optional<std::string> incremental_filter(const std::optional<ServerState>& stored,
                                              const ServerState& server,
                                              const std::string& base_filter);

}  // namespace mailroster::directory::ldap
