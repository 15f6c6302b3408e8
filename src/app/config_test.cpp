#include "app/config.hpp"

#include <gtest/gtest.h>

namespace mailroster::app {
namespace {

TEST(Config, EmptyTextGivesDefaults) {
  auto c = parse_config("", "test.toml").value();
  EXPECT_EQ(c.database_path, "mailroster.db");
  EXPECT_EQ(c.admin_listen.str(), "127.0.0.1:8080");
  EXPECT_EQ(c.log_level, "info");
}

TEST(Config, NoFileGivesDefaults) {
  auto c = load_config("").value();
  EXPECT_EQ(c.database_path, "mailroster.db");
}

TEST(Config, ReadsEveryKey) {
  auto c = parse_config(R"(
[database]
path = "/var/lib/mailroster/state.db"
[admin]
listen = "127.0.0.1:0"
[log]
level = "debug"
)",
                        "test.toml")
               .value();
  EXPECT_EQ(c.database_path, "/var/lib/mailroster/state.db");
  EXPECT_EQ(c.admin_listen.port, 0);
  EXPECT_EQ(c.log_level, "debug");
}

struct BadConfig {
  const char* text;
  const char* message;
};

class ConfigRejects : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ConfigRejects, NamingKeyAndLine) {
  auto c = parse_config(GetParam().text, "test.toml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    StrictSchema, ConfigRejects,
    ::testing::Values(
        BadConfig{"[admin]\nlisen = \"x\"\n", "test.toml:2: unknown key 'admin.lisen'"},
        BadConfig{"[smtpd]\nport = 25\n", "test.toml:1: unknown section 'smtpd'"},
        BadConfig{"\n[admin]\nlisten = 8080\n", "test.toml:3: admin.listen must be a string"},
        BadConfig{"[admin]\nlisten = \"127.0.0.1:99999\"\n",
                  "test.toml:2: admin.listen bad port '99999' in '127.0.0.1:99999'"},
        BadConfig{"[log]\nlevel = \"loud\"\n",
                  "test.toml:2: log.level unknown level 'loud' (trace, debug, info, warn, error, "
                  "critical, off)"},
        BadConfig{"[database]\npath = \"\"\n", "test.toml:2: database.path must not be empty"},
        BadConfig{"database = 1\n", "test.toml:1: 'database' must be a table"},
        BadConfig{"[admin\n",
                  "test.toml:1: Error while parsing table header: expected ']', saw '\\n'"}),
    [](const auto& param) { return "case" + std::to_string(param.index); });

TEST(Config, MissingFileIsAnError) {
  auto c = load_config("/nonexistent/mailroster.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("/nonexistent/mailroster.toml"), std::string::npos);
}

}  // namespace
}  // namespace mailroster::app
