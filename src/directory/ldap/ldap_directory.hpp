// The LDAP source as a DirectorySource for the SyncService. Incremental state (JSON): the
// server's invocationID and highestCommittedUSN after the last successful run.
#pragma once

#include "directory/ldap/ldap_source.hpp"
#include "directory/sync_service.hpp"

namespace mailroster::directory::ldap {

class LdapDirectory : public DirectorySource {
 public:
  // on_page: called after each page of a read (tests stop the server there).
  explicit LdapDirectory(std::function<void(std::size_t)> on_page = {})
      : on_page_(std::move(on_page)) {}
  core::Source kind() const override { return core::Source::ldap; }
  core::Result<nlohmann::json> check_settings(const nlohmann::json& settings) const override;
  core::Result<nlohmann::json> test(const nlohmann::json& settings,
                                    const std::string& secret) override;
  core::Result<SourceRead> read(const nlohmann::json& settings, const std::string& secret,
                                const std::string& state,
                                const core::EntrySink& on_entries) override;

 private:
  std::function<void(std::size_t)> on_page_;
};

}  // namespace mailroster::directory::ldap
