#include "admin/metrics.hpp"

#include <gtest/gtest.h>

namespace mailroster::admin {
namespace {

TEST(Metrics, RendersFamiliesWithTheirSeries) {
  Metrics m;
  m.describe("t_cert_expiry", "When the certificate expires", "gauge");
  m.gauge("t_cert_expiry", R"(listener="inbound")", [] { return 1798761600.0; });
  m.gauge("t_cert_expiry", R"(listener="admin")", [] { return 1767225600.0; });
  m.gauge("t_cache_entries", [] { return 1234567.0; });
  m.add("t_reloads_total", R"(result="ok")", 2);
  m.add("t_reloads_total", R"(result="failed")");
  EXPECT_EQ(m.render(),
            "# TYPE t_reloads_total counter\n"
            "t_reloads_total{result=\"failed\"} 1\n"
            "t_reloads_total{result=\"ok\"} 2\n"
            "# TYPE t_cache_entries gauge\n"
            "t_cache_entries 1234567\n"
            "# HELP t_cert_expiry When the certificate expires\n"
            "# TYPE t_cert_expiry gauge\n"
            "t_cert_expiry{listener=\"admin\"} 1767225600\n"
            "t_cert_expiry{listener=\"inbound\"} 1798761600\n");
}

TEST(Metrics, FractionsKeepTheirDigits) {
  Metrics m;
  m.gauge("t_ratio", [] { return 0.125; });
  EXPECT_EQ(m.render(), "# TYPE t_ratio gauge\nt_ratio 0.125\n");
}

// A set family's series are replaced whole: a label set no longer given is gone.
TEST(Metrics, SetGaugesReplaceTheFamilysSeries) {
  Metrics m;
  m.set_gauges("t_users", {{R"(company="acme")", 3}, {R"(company="globex")", 5}});
  m.set_gauges("t_users", {{R"(company="acme")", 4}});
  EXPECT_EQ(m.render(), "# TYPE t_users gauge\nt_users{company=\"acme\"} 4\n");
}

// A counter's series named when it is described are there at 0 before their first event; a
// family with no series yet is named all the same.
TEST(Metrics, CountersStartAtZeroAndEmptyFamiliesAreNamed) {
  Metrics m;
  m.describe("t_runs_total", "Runs", "counter", {""});
  m.describe("t_messages_total", "Messages", "counter", Metrics::each("result", {"ok", "failed"}));
  m.describe("t_users", "Users per company", "gauge");
  m.add("t_messages_total", R"(result="ok")");
  EXPECT_EQ(m.render(),
            "# HELP t_messages_total Messages\n"
            "# TYPE t_messages_total counter\n"
            "t_messages_total{result=\"failed\"} 0\n"
            "t_messages_total{result=\"ok\"} 1\n"
            "# HELP t_runs_total Runs\n"
            "# TYPE t_runs_total counter\n"
            "t_runs_total 0\n"
            "# HELP t_users Users per company\n"
            "# TYPE t_users gauge\n");
}

}  // namespace
}  // namespace mailroster::admin
