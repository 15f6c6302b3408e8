// Azure AD (Entra ID) through Microsoft Graph v1.0 as a DirectorySource for the SyncService.
//
// Full run: a delta link for "now" first (/users/delta?$deltatoken=latest, so nothing that
// changes during the read is missed), then /users and /groups with $select, paged; each
// mail-enabled group's members from /groups/{id}/transitiveMembers (Graph resolves nesting).
// Incremental run: the stored delta link; changed users, "@removed" users deleted (when
// deleting is on); a rejected delta link (410, syncStateNotFound, resyncRequired) means a
// full run. State: the delta link.
//
// What Graph v1.0 does not show, and so cannot be synced from Azure AD: the mailbox type
// (shared, room, equipment mailboxes are Exchange Online properties: they come in as users;
// mark them functional by hand), and "hidden from the address list" (showInAddressList is
// not maintained in Graph). Guests (userType Guest) are rejected: they are external people.
// Users without a mailbox (no mail, no SMTP proxy address) are rejected: "no mail address".
#pragma once

#include "core/clock.hpp"
#include "directory/graph/graph_client.hpp"
#include "directory/sync_service.hpp"

namespace mailroster::directory::graph {

class GraphDirectory : public DirectorySource {
 public:
  explicit GraphDirectory(const core::Clock& clock, GraphClient::Sleep sleep = {});
  core::Source kind() const override { return core::Source::azure; }
  core::Result<nlohmann::json> check_settings(const nlohmann::json& settings) const override;
  core::Result<nlohmann::json> test(const nlohmann::json& settings,
                                    const std::string& secret) override;
  core::Result<SourceRead> read(const nlohmann::json& settings, const std::string& secret,
                                const std::string& state,
                                const core::EntrySink& on_entries) override;

 private:
  const core::Clock& clock_;
  GraphClient::Sleep sleep_;
  TokenCache tokens_;
};

// One Graph user object as a directory entry, or why it is rejected.
core::Result<core::DirectoryEntry> user_entry(const nlohmann::json& user);

}  // namespace mailroster::directory::graph
