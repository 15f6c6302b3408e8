#include "directory/ldap/ldap_source.hpp"

#include <arpa/inet.h>
#include <ldap.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <map>
#include <memory>

#include "core/first_claims.hpp"

namespace mailroster::directory::ldap {

using core::ErrorCode;
using core::Failure;

std::string_view to_string(Security s) {
  switch (s) {
    case Security::none:
      return "none";
    case Security::starttls:
      return "starttls";
    case Security::ldaps:
      return "ldaps";
  }
  return "?";
}

void to_json(nlohmann::json& j, const LdapSettings& s) {
  j = {{"host", s.host},
       {"port", s.port},
       {"security", to_string(s.security)},
       {"ca_file", s.ca_file},
       {"verify", s.verify},
       {"bind_dn", s.bind_dn},
       {"base_dn", s.base_dn},
       {"filter", s.filter},
       {"network_timeout_seconds", s.network_timeout_seconds},
       {"operation_timeout_seconds", s.operation_timeout_seconds},
       {"page_size", s.page_size}};
}

core::Result<LdapSettings> settings_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return core::invalid("LDAP settings must be an object");
  LdapSettings s;
  for (const auto& [key, v] : j.items()) {
    auto bad = [&](const char* what) {
      return core::invalid("LDAP setting '" + key + "' " + what, key);
    };
    auto text = [&](std::string& out) -> bool {
      if (!v.is_string()) return false;
      out = v.get<std::string>();
      return true;
    };
    auto number = [&](int& out, int lo, int hi) -> bool {
      if (!v.is_number_integer()) return false;
      const auto n = v.get<long long>();
      if (n < lo || n > hi) return false;
      out = static_cast<int>(n);
      return true;
    };
    bool ok = true;
    if (key == "host") {
      ok = text(s.host);
      if (auto hosts = ldap_hosts(s.host, 389); ok && !hosts) {
        return core::invalid("LDAP setting 'host': " + hosts.error().message, key);
      }
    } else if (key == "port") {
      ok = number(s.port, 1, 65535);
    } else if (key == "security") {
      std::string t;
      ok = text(t);
      if (t == "none") {
        s.security = Security::none;
      } else if (t == "starttls") {
        s.security = Security::starttls;
      } else if (t == "ldaps") {
        s.security = Security::ldaps;
      } else {
        return bad("must be none, starttls or ldaps");
      }
    } else if (key == "ca_file") {
      ok = text(s.ca_file);
    } else if (key == "verify") {
      ok = v.is_boolean();
      if (ok) s.verify = v.get<bool>();
    } else if (key == "bind_dn") {
      ok = text(s.bind_dn);
    } else if (key == "base_dn") {
      ok = text(s.base_dn) && !s.base_dn.empty();
    } else if (key == "filter") {
      ok = text(s.filter) &&
           (s.filter.empty() || (s.filter.front() == '(' && s.filter.back() == ')'));
    } else if (key == "network_timeout_seconds") {
      ok = number(s.network_timeout_seconds, 1, 600);
    } else if (key == "operation_timeout_seconds") {
      ok = number(s.operation_timeout_seconds, 1, 3600);
    } else if (key == "page_size") {
      ok = number(s.page_size, 1, 5000);
    } else {
      return bad("is not a setting");
    }
    if (!ok) return bad("has a bad value");
  }
  if (s.host.empty()) return core::invalid("LDAP setting 'host' is required", "host");
  if (s.base_dn.empty()) return core::invalid("LDAP setting 'base_dn' is required", "base_dn");
  return s;
}

core::Result<core::Destination> ldap_hosts(std::string_view text, int port) {
  if (port < 1 || port > 65535) return core::invalid("bad LDAP port " + std::to_string(port));
  return core::Destination::parse(text, static_cast<std::uint16_t>(port));
}

namespace {

struct LdapDeleter {
  void operator()(LDAP* ld) const { ldap_unbind_ext_s(ld, nullptr, nullptr); }
};
struct MessageDeleter {
  void operator()(LDAPMessage* m) const { ldap_msgfree(m); }
};
using Handle = std::unique_ptr<LDAP, LdapDeleter>;
using Message = std::unique_ptr<LDAPMessage, MessageDeleter>;

std::string describe(LDAP* ld, int rc, const std::string& during) {
  std::string text = during + ": " + ldap_err2string(rc);
  char* diag = nullptr;
  if (ld && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) == LDAP_OPT_SUCCESS && diag) {
    if (*diag) text += " (" + std::string(diag) + ")";
    ldap_memfree(diag);
  }
  return text;
}

core::Result<Handle> connect(const LdapSettings& s, const std::string& password) {
  // libldap takes a list of URIs and connects to the first that answers.
  std::string uri;
  auto hosts = ldap_hosts(s.host, s.port);
  if (!hosts) return hosts.error();
  for (const auto& host : hosts->hosts) {
    if (!uri.empty()) uri += ' ';
    uri += std::string(s.security == Security::ldaps ? "ldaps://" : "ldap://") + host.str();
  }
  LDAP* raw = nullptr;
  int rc = ldap_initialize(&raw, uri.c_str());
  if (rc != LDAP_SUCCESS)
    return core::invalid("bad LDAP address " + uri + ": " + ldap_err2string(rc));
  Handle ld(raw);
  const int version = LDAP_VERSION3;
  ldap_set_option(ld.get(), LDAP_OPT_PROTOCOL_VERSION, &version);
  ldap_set_option(ld.get(), LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  timeval network{s.network_timeout_seconds, 0};
  timeval operation{s.operation_timeout_seconds, 0};
  ldap_set_option(ld.get(), LDAP_OPT_NETWORK_TIMEOUT, &network);
  ldap_set_option(ld.get(), LDAP_OPT_TIMEOUT, &operation);
  if (s.security != Security::none) {
    const int require = s.verify ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER;
    ldap_set_option(ld.get(), LDAP_OPT_X_TLS_REQUIRE_CERT, &require);
    if (!s.ca_file.empty()) ldap_set_option(ld.get(), LDAP_OPT_X_TLS_CACERTFILE, s.ca_file.c_str());
    const int zero = 0;
    ldap_set_option(ld.get(), LDAP_OPT_X_TLS_NEWCTX, &zero);  // apply this handle's settings
  }
  auto fail = [&](int code, const std::string& during) {
    return core::Error{ErrorCode::unavailable, describe(ld.get(), code, during + " " + uri), ""};
  };
  if (s.security == Security::starttls) {
    rc = ldap_start_tls_s(ld.get(), nullptr, nullptr);
    if (rc != LDAP_SUCCESS) return fail(rc, "StartTLS with");
  }
  berval cred{static_cast<ber_len_t>(password.size()), const_cast<char*>(password.data())};
  rc = ldap_sasl_bind_s(ld.get(), s.bind_dn.empty() ? nullptr : s.bind_dn.c_str(), LDAP_SASL_SIMPLE,
                        &cred, nullptr, nullptr, nullptr);
  if (rc == LDAP_INVALID_CREDENTIALS) {
    return core::Error{ErrorCode::unavailable,
                       "bind to " + uri + " as '" + s.bind_dn + "' refused: invalid credentials",
                       ""};
  }
  if (rc != LDAP_SUCCESS) return fail(rc, "bind to");
  // Read the socket in large pieces: without this libldap reads each message's tag, length
  // and body with reads of their own, several system calls per directory entry. (slapd puts
  // the same layer under its connections, TLS above it.)
  Sockbuf* sb = nullptr;
  if (ldap_get_option(ld.get(), LDAP_OPT_SOCKBUF, &sb) == LDAP_OPT_SUCCESS && sb) {
    ber_sockbuf_add_io(sb, &ber_sockbuf_io_readahead, LBER_SBIOD_LEVEL_PROVIDER, nullptr);
  }
  return ld;
}

// One search's results (entries and their attributes), lower-cased attribute names.
struct Entry {
  std::string dn;
  Attributes attrs;
};

Entry read_entry(LDAP* ld, LDAPMessage* m) {
  Entry e;
  // One pass over the entry, as ldapsearch reads it: the DN, then each attribute's name and
  // values where they stand in the message (ldap_get_values_len would search the entry again
  // for every attribute).
  BerElement* ber = nullptr;
  berval dn{0, nullptr};
  if (ldap_get_dn_ber(ld, m, &ber, &dn) != LDAP_SUCCESS) {
    if (ber) ber_free(ber, 0);
    return e;
  }
  e.dn.assign(dn.bv_val, dn.bv_len);
  berval name;
  BerVarray vals = nullptr;
  while (ldap_get_attribute_ber(ld, m, ber, &name, &vals) == LDAP_SUCCESS && name.bv_val) {
    auto& values = e.attrs[core::ascii_lower({name.bv_val, name.bv_len})];
    for (BerVarray v = vals; v && v->bv_val; ++v) values.emplace_back(v->bv_val, v->bv_len);
    ber_memfree(vals);
    vals = nullptr;
  }
  ber_free(ber, 0);
  return e;
}

std::vector<char*> attr_list(std::vector<std::string>& names) {
  std::vector<char*> out;
  for (auto& n : names) out.push_back(n.data());
  out.push_back(nullptr);
  return out;
}

// A base-scope read of one entry's attributes (rootDSE, range retrieval).
core::Result<Attributes> read_base(LDAP* ld, const std::string& dn, std::vector<std::string> attrs,
                                   int timeout) {
  auto list = attr_list(attrs);
  LDAPMessage* raw = nullptr;
  timeval tv{timeout, 0};
  const int rc = ldap_search_ext_s(ld, dn.c_str(), LDAP_SCOPE_BASE, "(objectClass=*)", list.data(),
                                   0, nullptr, nullptr, &tv, 0, &raw);
  Message res(raw);
  if (rc == LDAP_NO_SUCH_OBJECT) return Attributes{};
  if (rc != LDAP_SUCCESS) {
    return core::Error{
        ErrorCode::unavailable,
        describe(ld, rc, "reading " + (dn.empty() ? std::string("the rootDSE") : dn)), ""};
  }
  LDAPMessage* m = ldap_first_entry(ld, res.get());
  return m ? read_entry(ld, m).attrs : Attributes{};
}

// The address of the server this handle is connected to ("192.0.2.5:636"), of the hosts it
// was given: the connection's socket says which one answered.
std::string connected_address(LDAP* ld) {
  int fd = -1;
  if (ldap_get_option(ld, LDAP_OPT_DESC, &fd) != LDAP_OPT_SUCCESS || fd < 0) return "";
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return "";
  char host[INET6_ADDRSTRLEN] = {};
  if (peer.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(peer);
    ::inet_ntop(AF_INET, &in.sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in.sin_port));
  }
  if (peer.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(peer);
    ::inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6.sin6_port));
  }
  return "";
}

core::Result<ServerInfo> server_info(LDAP* ld, int timeout) {
  auto root =
      read_base(ld, "", {"highestCommittedUSN", "dsServiceName", "vendorName", "+"}, timeout);
  if (!root) return root.error();
  ServerInfo info;
  info.address = connected_address(ld);
  auto first = [&](const Attributes& a, const char* name) {
    auto it = a.find(name);
    return it == a.end() || it->second.empty() ? std::string() : it->second.front();
  };
  info.vendor = first(*root, "vendorname");
  if (const auto usn = parse_integer(first(*root, "highestcommittedusn"))) {
    info.vendor = "Active Directory";
    info.state.highest_usn = *usn;
    const auto service = first(*root, "dsservicename");
    if (!service.empty()) {
      auto ntds = read_base(ld, service, {"invocationId"}, timeout);
      if (!ntds) return ntds.error();
      const auto id = first(*ntds, "invocationid");
      info.state.invocation_id = guid_text(id).value_or(id);
    }
  }
  return info;
}

bool is_group(const Attributes& a) {
  auto it = a.find("objectclass");
  if (it == a.end()) return false;
  for (const auto& c : it->second) {
    const auto l = core::ascii_lower(c);
    if (l == "group" || l == "groupofnames" || l == "groupofuniquenames") return true;
  }
  return false;
}

}  // namespace

core::Result<ServerInfo> test_connection(const LdapSettings& s, const std::string& password) {
  auto ld = connect(s, password);
  if (!ld) return ld.error();
  return server_info(ld->get(), s.operation_timeout_seconds);
}

core::Result<LdapRead> read_directory(const LdapSettings& s, const std::string& password,
                                      const std::optional<ServerState>& last,
                                      const core::EntrySink& on_entries,
                                      const std::function<void(std::size_t)>& on_page) {
  auto connected = connect(s, password);
  if (!connected) return connected.error();
  LDAP* ld = connected->get();
  auto info = server_info(ld, s.operation_timeout_seconds);
  if (!info) return info.error();

  LdapRead out;
  out.snapshot.source = core::Source::ldap;
  out.server = info->state;
  out.address = info->address;
  const std::string wanted =
      "(|(mail=*)(proxyAddresses=*)(objectClass=group)(objectClass=groupOfNames))";
  const std::string base_filter = s.filter.empty() ? wanted : "(&" + wanted + s.filter + ")";
  std::string filter = base_filter;
  if (auto inc = incremental_filter(last, info->state, base_filter)) {
    filter = *inc;
    out.incremental = true;
    out.snapshot.complete = false;  // only changed entries: never a basis for deletes
  }
  std::vector<std::string> attrs = {"objectClass",
                                    "mail",
                                    "givenName",
                                    "sn",
                                    "proxyAddresses",
                                    "userAccountControl",
                                    "msExchHideFromAddressLists",
                                    "msExchRecipientTypeDetails",
                                    "objectGUID",
                                    "entryUUID",
                                    "groupType",
                                    "member"};
  auto list = attr_list(attrs);

  std::map<std::string, std::vector<std::string>> direct;  // group DN -> its member DNs
  std::map<std::string, std::size_t> group_entry;          // normalized group DN -> snapshot index
  // Keeps an entry's addresses and identity to itself: false (rejected) when its primary
  // address or its identity is an earlier entry's; an alias an earlier entry has is dropped
  // from it, with the reason.
  std::vector<std::string> claimed_by;  // the DNs of entries kept so far
  core::FirstClaims used;               // address keys, by their entries in claimed_by
  core::FirstClaims identity;           // source ids, by their entries in claimed_by
  auto claim = [&](const std::string& dn, core::DirectoryEntry& entry) {
    if (auto holder = used.holder(entry.address.key())) {
      out.rejected.push_back({dn, "address " + entry.address.str() + " is also the address of " +
                                      claimed_by[*holder] + "; left out"});
      return false;
    }
    const auto self = claimed_by.size();
    if (!entry.source_id.empty()) {
      if (auto holder = identity.claim(entry.source_id, self); holder != self) {
        out.rejected.push_back({dn, "identity " + entry.source_id + " is also that of " +
                                        claimed_by[holder] + "; left out"});
        return false;
      }
    }
    claimed_by.push_back(dn);
    used.claim(entry.address.key(), self);
    if (!entry.aliases) return true;
    std::erase_if(*entry.aliases, [&](const core::Address& a) {
      const auto holder = used.claim(a.key(), self);
      if (holder == self) return false;
      out.rejected.push_back({dn, "alias " + a.str() + " of " + entry.address.str() +
                                      " is also an address of " + claimed_by[holder] +
                                      "; left out"});
      return true;
    });
    return true;
  };
  std::vector<core::DirectoryEntry> page_entries;  // this page's, when they are handed over
  berval cookie{0, nullptr};
  auto free_cookie = [&] {
    if (cookie.bv_val) ber_memfree(cookie.bv_val);
    cookie = {0, nullptr};
  };
  do {
    LDAPControl* page = nullptr;
    int rc = ldap_create_page_control(ld, s.page_size, &cookie, 1, &page);
    if (rc != LDAP_SUCCESS) {
      free_cookie();
      return core::Error{ErrorCode::internal, describe(ld, rc, "paged-results control"), ""};
    }
    LDAPControl* controls[] = {page, nullptr};
    // Asynchronous: each entry is read as it arrives, while the server is still sending the
    // rest of the page, instead of after the whole page came in.
    const auto page_name = [&] {
      return "search under '" + s.base_dn + "' (page " + std::to_string(out.pages + 1) + ")";
    };
    int msgid = 0;
    rc = ldap_search_ext(ld, s.base_dn.c_str(), LDAP_SCOPE_SUBTREE, filter.c_str(), list.data(), 0,
                         controls, nullptr, nullptr, 0, &msgid);
    ldap_control_free(page);
    free_cookie();
    if (rc != LDAP_SUCCESS) {
      return core::Error{ErrorCode::unavailable, describe(ld, rc, page_name()), ""};
    }
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(s.operation_timeout_seconds);
    Message done;  // the page's final result
    while (!done) {
      const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ldap_abandon_ext(ld, msgid, nullptr, nullptr);
        return core::Error{ErrorCode::unavailable, describe(ld, LDAP_TIMEOUT, page_name()), ""};
      }
      timeval tv{static_cast<time_t>(left.count() / 1000000),
                 static_cast<suseconds_t>(left.count() % 1000000)};
      LDAPMessage* raw = nullptr;
      const int type = ldap_result(ld, msgid, LDAP_MSG_ONE, &tv, &raw);
      Message msg(raw);
      if (type == 0) continue;  // the deadline check above ends the wait
      if (type < 0) {
        int err = LDAP_SERVER_DOWN;
        ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &err);
        return core::Error{ErrorCode::unavailable, describe(ld, err, page_name()), ""};
      }
      if (type == LDAP_RES_SEARCH_RESULT) {
        done = std::move(msg);
        break;
      }
      if (type != LDAP_RES_SEARCH_ENTRY) continue;  // references: not followed
      LDAPMessage* m = msg.get();
      auto e = read_entry(ld, m);
      const bool group = is_group(e.attrs);
      if (group) {
        // Large member lists come in ranges (AD: 1,500 values per request).
        auto ranged = ranged_values(e.attrs, "member");
        while (ranged.next_request) {
          auto more = read_base(ld, e.dn, {*ranged.next_request}, s.operation_timeout_seconds);
          if (!more) return more.error();
          auto next = ranged_values(*more, "member");
          if (next.values.empty() && next.next_request == ranged.next_request) break;
          ranged.values.insert(ranged.values.end(), next.values.begin(), next.values.end());
          ranged.next_request = next.next_request;
        }
        std::erase_if(e.attrs, [](const auto& kv) { return kv.first.rfind("member;", 0) == 0; });
        e.attrs["member"] = std::move(ranged.values);
      }
      const bool has_mail = e.attrs.count("mail") || e.attrs.count("proxyaddresses");
      if (has_mail) {
        auto read = to_entry(e.attrs, group);
        if (!read) {
          out.rejected.push_back({e.dn, read.error().message});
        } else if (auto entry = std::move(read).value(); claim(e.dn, entry)) {
          if (!group && on_entries) {
            page_entries.push_back(std::move(entry));
          } else {
            if (group) group_entry[normalize_dn(e.dn)] = out.snapshot.entries.size();
            out.snapshot.entries.push_back(std::move(entry));
          }
        }
      }
      if (group) {
        direct[e.dn] = std::move(e.attrs["member"]);
      }
    }
    int result = LDAP_SUCCESS;
    LDAPControl** returned = nullptr;
    rc = ldap_parse_result(ld, done.get(), &result, nullptr, nullptr, nullptr, &returned, 0);
    if (rc != LDAP_SUCCESS) {
      return core::Error{ErrorCode::unavailable, describe(ld, rc, "reading a search result"), ""};
    }
    if (result != LDAP_SUCCESS) {
      ldap_controls_free(returned);
      return core::Error{ErrorCode::unavailable, describe(ld, result, page_name()), ""};
    }
    if (LDAPControl* resp = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, returned, nullptr)) {
      ber_int_t estimate = 0;
      ldap_parse_pageresponse_control(ld, resp, &estimate, &cookie);
    }
    ldap_controls_free(returned);
    ++out.pages;
    // Between pages, so that the taker's pace never counts against a page's deadline.
    if (!page_entries.empty() && !on_entries(std::move(page_entries))) {
      free_cookie();
      return core::Error{ErrorCode::unavailable, "the read was stopped", ""};
    }
    page_entries.clear();
    if (on_page) on_page(out.pages);
  } while (cookie.bv_val && cookie.bv_len > 0);
  free_cookie();

  const auto members = resolve_members(direct);
  for (const auto& [dn, index] : group_entry) {
    if (auto it = members.find(dn); it != members.end()) {
      out.snapshot.entries[index].members = it->second.size();
    }
  }
  out.groups = direct.size();
  return out;
}

}  // namespace mailroster::directory::ldap
