#include "store/secret_box.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "test_support.hpp"

namespace mailroster::store {
namespace {

TEST(SecretBox, SealsWithAFreshNonceAndOpensOnlyWithItsKey) {
  testing::TempDir dir;
  const auto box = SecretBox::open_key_file(dir.file("k"));
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("k").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto a = box.seal("bind-password");
  const auto b = box.seal("bind-password");
  EXPECT_NE(a, b);  // fresh nonce
  EXPECT_EQ(a.find("bind-password"), std::string::npos);
  EXPECT_EQ(box.unseal(a).value(), "bind-password");
  // The same file again opens it; another key does not; tampering is detected.
  EXPECT_EQ(SecretBox::open_key_file(dir.file("k")).unseal(b).value(), "bind-password");
  EXPECT_FALSE(SecretBox::open_key_file(dir.file("other")).unseal(a));
  auto tampered = a;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(box.unseal(tampered));
  EXPECT_FALSE(box.unseal("not base64 !"));
  testing::write_file(dir.file("short"), "abc");
  EXPECT_THROW(SecretBox::open_key_file(dir.file("short")), core::Failure);
}

}  // namespace
}  // namespace mailroster::store

namespace mailroster::store {
namespace {

TEST(SecretBox, DerivedTokensNeedTheKeyFile) {
  testing::TempDir dir;
  const auto a = SecretBox::open_key_file(dir.file("a"));
  EXPECT_EQ(a.derive("verify-flush"),
            SecretBox::open_key_file(dir.file("a")).derive("verify-flush"));
  EXPECT_NE(a.derive("verify-flush"), a.derive("something else"));
  EXPECT_NE(a.derive("verify-flush"),
            SecretBox::open_key_file(dir.file("b")).derive("verify-flush"));
  EXPECT_EQ(a.derive("x").size(), 64u);
}

}  // namespace
}  // namespace mailroster::store
