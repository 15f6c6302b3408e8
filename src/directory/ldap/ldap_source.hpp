// Reading Active Directory (or any LDAPv3 server) over OpenLDAP's libldap: LDAP on 389 with
// optional StartTLS, or LDAPS on 636; the CA file and certificate verification (on by
// default); a simple bind; a subtree search under the base DN with the paged-results control
// (so directories larger than the server's size limit are read whole), range retrieval of
// large `member` lists, nested group membership. Any failure (server down, bind refused, TLS,
// timeout, connection lost mid-search) fails the whole read: a partial directory is never
// returned as if it were complete.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/network.hpp"
#include "core/sync_planner.hpp"
#include "directory/ldap/ldap_entry.hpp"

namespace mailroster::directory::ldap {

enum class Security { none, starttls, ldaps };

struct LdapSettings {
  // One or more host names or IP addresses, separated by spaces or commas (several domain
  // controllers), each with its own port if it needs one ("dc1.corp.example, dc2:3269",
  // "[2001:db8::5]"; the others use `port`): each is tried in turn until one answers, with the
  // same security.
  std::string host;
  int port = 389;
  Security security = Security::none;
  std::string ca_file;  // empty: the system's CAs
  bool verify = true;   // verify the server's certificate and name
  std::string bind_dn;
  std::string base_dn;
  std::string filter;  // optional, ANDed with the entry filter
  int network_timeout_seconds = 10;
  int operation_timeout_seconds = 60;
  int page_size = 1000;  // AD answers at most 1,000 per page (MaxPageSize)
};
void to_json(nlohmann::json& j, const LdapSettings& s);
// Strict: unknown fields and bad values fail with the field's name.
core::Result<LdapSettings> settings_from_json(const nlohmann::json& j);
std::string_view to_string(Security s);
// The servers a `host` setting names, in order, those without a port on `port` (core::
// Destination: at most 10, none twice); an error for an empty setting or anything but host
// names or addresses with a port (a scheme, a path, credentials).
core::Result<core::Destination> ldap_hosts(std::string_view text, int port);

struct Rejected {
  std::string dn;
  std::string reason;
};

struct LdapRead {
  core::Snapshot snapshot;  // complete = false for an incremental run (no deletes)
  std::vector<Rejected> rejected;
  ServerState server;
  std::string address;  // the one of the hosts that answered (ServerInfo::address)
  bool incremental = false;
  std::size_t pages = 0;
  std::size_t groups = 0;
};

struct ServerInfo {
  ServerState state;
  std::string vendor;   // "Active Directory" or the rootDSE's vendorName
  std::string address;  // the one of the hosts that answered: "192.0.2.5:389"
};

// Connects, binds and reads the rootDSE: `sync ldap test`.
core::Result<ServerInfo> test_connection(const LdapSettings& settings, const std::string& password);

// Reads the directory. last: the server state after the last full run (nullopt: none), for
// an incremental run. on_entries, when set, takes each page's entries as soon as the page is
// read, groups excepted (their nested membership is known only at the end: they stay in the
// snapshot, which then holds only them); when it returns false the read stops and fails.
// Across the whole read an address and an identity (objectGUID, entryUUID) belong to one
// entry only: a later entry with an address an earlier one has, as primary or alias, or with
// its identity, is rejected (or, for an alias, loses it), so that no two batches repeat
// either. on_page is called after each page of results (tests stop the server there).
core::Result<LdapRead> read_directory(const LdapSettings& settings, const std::string& password,
                                      const std::optional<ServerState>& last,
                                      const core::EntrySink& on_entries = {},
                                      const std::function<void(std::size_t)>& on_page = {});

}  // namespace mailroster::directory::ldap
