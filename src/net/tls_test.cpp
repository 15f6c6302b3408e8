#include "net/tls.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fstream>

#include "test_support.hpp"

namespace mailroster::net {
namespace {

using testing::TempDir;

double days_until(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t - std::chrono::system_clock::now()).count() / 86400;
}

// A self-signed certificate and its key, by Debian's openssl.
void make_certificate(const TempDir& dir, const std::string& name, int days) {
  const auto r = testing::run_command(
      "/usr/bin/openssl", {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                           "-nodes", "-days", std::to_string(days), "-subj", "/CN=" + name,
                           "-keyout", dir.file(name + ".key"), "-out", dir.file(name + ".pem")});
  ASSERT_EQ(r.status, 0) << r.err;
}

TEST(ServerTls, WithoutFilesThereIsNone) {
  ServerTls tls("inbound", "", "");
  EXPECT_FALSE(tls.enabled());
  tls.load();
  EXPECT_EQ(tls.context(), nullptr);
}

// Certificates a.test (30 days) and b.test (3 days) made, and a ServerTls over cert.pem and
// key.pem, which put_in_place() fills as a renewal does.
class ServerTlsFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(make_certificate(dir, "a.test", 30));
    ASSERT_NO_FATAL_FAILURE(make_certificate(dir, "b.test", 3));
    put_in_place("a.test.pem", "cert.pem");
    put_in_place("a.test.key", "key.pem");
  }
  void put_in_place(const std::string& from, const std::string& to) {
    std::filesystem::copy_file(dir.file(from), dir.file(to),
                               std::filesystem::copy_options::overwrite_existing);
  }
  TempDir dir;
  ServerTls tls{"inbound", dir.file("cert.pem"), dir.file("key.pem")};
};

TEST_F(ServerTlsFiles, LoadsAndReloadsTheCertificate) {
  ASSERT_TRUE(tls.enabled());
  tls.load();
  const auto first = tls.context();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(tls.certificate().subject, "CN=a.test");
  EXPECT_NEAR(days_until(tls.certificate().not_after), 30, 0.01);

  // Renewed in place: the next load serves the new one; the old context lives on for the
  // connections holding it.
  put_in_place("b.test.pem", "cert.pem");
  put_in_place("b.test.key", "key.pem");
  tls.load();
  EXPECT_NE(tls.context(), first);
  EXPECT_EQ(tls.certificate().subject, "CN=b.test");
  EXPECT_NEAR(days_until(tls.certificate().not_after), 3, 0.01);
  char name[64] = {};
  X509_NAME_oneline(X509_get_subject_name(SSL_CTX_get0_certificate(first->native_handle())), name,
                    sizeof name);
  EXPECT_STREQ(name, "/CN=a.test");  // what a connection that began before still holds
}

TEST_F(ServerTlsFiles, FilesThatCannotBeUsedLeaveTheOneInUse) {
  tls.load();
  const auto in_use = tls.context();

  // Half a renewal: the new certificate, the old key.
  put_in_place("b.test.pem", "cert.pem");
  testing::expect_failure([&] { tls.load(); }, core::ErrorCode::invalid_argument,
                          "inbound: cannot use TLS certificate '" + dir.file("cert.pem") +
                              "' with key '" + dir.file("key.pem") + "'");
  EXPECT_EQ(tls.context(), in_use);
  EXPECT_EQ(tls.certificate().subject, "CN=a.test");

  std::filesystem::remove(dir.file("key.pem"));
  testing::expect_failure([&] { tls.load(); }, core::ErrorCode::invalid_argument, "key.pem");
  put_in_place("b.test.key", "key.pem");
  { std::ofstream(dir.file("cert.pem"), std::ios::trunc) << "not a certificate\n"; }
  testing::expect_failure([&] { tls.load(); }, core::ErrorCode::invalid_argument, "cert.pem");
  EXPECT_EQ(tls.context(), in_use);
  EXPECT_EQ(tls.certificate().subject, "CN=a.test");
}

TEST(ServerTls, NothingToServeBeforeTheFirstLoad) {
  TempDir dir;
  ServerTls tls("admin", dir.file("missing.pem"), dir.file("missing.key"));
  EXPECT_TRUE(tls.enabled());
  testing::expect_failure([&] { tls.load(); }, core::ErrorCode::invalid_argument,
                          "admin: cannot use TLS certificate");
  EXPECT_EQ(tls.context(), nullptr);
}

}  // namespace
}  // namespace mailroster::net
