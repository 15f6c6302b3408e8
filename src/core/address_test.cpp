#include "core/address.hpp"

#include <gtest/gtest.h>

namespace mailroster::core {
namespace {

TEST(Address, ParsesSimpleAddress) {
  auto a = Address::parse("Alice.Liddell@Acme.Example");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->local(), "Alice.Liddell");
  EXPECT_EQ(a->domain(), "acme.example");
  EXPECT_EQ(a->str(), "Alice.Liddell@acme.example");
  EXPECT_EQ(a->key(), "alice.liddell@acme.example");
}

TEST(Address, ComparesCaseInsensitivelyButPreservesLocalCase) {
  auto a = Address::parse("Bob@ACME.example").value();
  auto b = Address::parse("bob@acme.EXAMPLE").value();
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.local(), "Bob");
  EXPECT_EQ(b.local(), "bob");
}

TEST(Address, AcceptsAtextSpecialsAndUtf8) {
  EXPECT_TRUE(Address::parse("o'brien+tag@x.example"));
  EXPECT_TRUE(Address::parse("a!#$%&'*+-/=?^_`{|}~@x.example"));
  EXPECT_TRUE(Address::parse("j\xC3\xBCrgen@x.example"));  // jürgen, RFC 6531
}

TEST(Address, QuotedLocalPartsAreCanonical) {
  auto plain = Address::parse("\"john\"@x.example").value();
  EXPECT_EQ(plain.str(), "john@x.example");
  auto spaced = Address::parse("\"john smith\"@x.example").value();
  EXPECT_EQ(spaced.str(), "\"john smith\"@x.example");
  auto escaped = Address::parse(R"("a\"b"@x.example)").value();
  EXPECT_EQ(escaped.str(), R"("a\"b"@x.example)");
  auto at_inside = Address::parse("\"a@b\"@x.example").value();
  EXPECT_EQ(at_inside.domain(), "x.example");
}

// What the store reads back is what parse made of the text, for every kind of address.
TEST(Address, AStoredAddressReadsBackAsParsed) {
  for (const char* text : {"Alice.Liddell@Acme.Example", "\"john\"@x.example",
                           "\"john smith\"@x.example", R"("a\"b"@x.example)", "\"a@b\"@X.example",
                           "j\xC3\xBCrgen@x.example", "O'Brien+Tag@x.example."}) {
    const auto parsed = Address::parse(text).value();
    const auto stored = Address::stored(parsed.str());
    ASSERT_TRUE(stored) << text;
    EXPECT_EQ(stored->local(), parsed.local()) << text;
    EXPECT_EQ(stored->domain(), parsed.domain()) << text;
    EXPECT_EQ(stored->key(), parsed.key()) << text;
    EXPECT_EQ(stored->str(), parsed.str()) << text;
  }
  for (const char* bad : {"", "nobody", "@x.example", "alice@"}) EXPECT_FALSE(Address::stored(bad));
}

struct BadAddress {
  const char* text;
  const char* why;
};

class AddressRejects : public ::testing::TestWithParam<BadAddress> {};

TEST_P(AddressRejects, WithAReason) {
  auto a = Address::parse(GetParam().text);
  ASSERT_FALSE(a) << GetParam().text;
  EXPECT_NE(a.error().message.find(GetParam().why), std::string::npos) << a.error().message;
  EXPECT_EQ(a.error().code, ErrorCode::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Rfc5321, AddressRejects,
                         ::testing::Values(BadAddress{"", "empty"}, BadAddress{"alice", "no '@'"},
                                           BadAddress{"@x.example", "empty local part"},
                                           BadAddress{"alice@", "empty domain"},
                                           BadAddress{".alice@x.example", "invalid local part"},
                                           BadAddress{"alice.@x.example", "invalid local part"},
                                           BadAddress{"a..b@x.example", "invalid local part"},
                                           BadAddress{"a b@x.example", "invalid local part"},
                                           BadAddress{"a(b)@x.example", "invalid local part"},
                                           BadAddress{"alice@x..example", "empty label"},
                                           BadAddress{"alice@-x.example",
                                                      "starts or ends with '-'"},
                                           BadAddress{"alice@x_y.example", "invalid character"},
                                           BadAddress{"alice@[192.0.2.1]", "address literals"},
                                           BadAddress{"\"a\"b\"@x.example", "unescaped quote"},
                                           BadAddress{"\"a\x01\"@x.example", "control character"},
                                           BadAddress{"a\xC3@x.example", "UTF-8"},
                                           BadAddress{"a\xED\xA0\x80@x.example", "UTF-8"}),
                         [](const auto& param) { return "case" + std::to_string(param.index); });

TEST(Address, EnforcesRfc5321Lengths) {
  const std::string local64(64, 'a');
  EXPECT_TRUE(Address::parse(local64 + "@x.example"));
  auto too_long_local = Address::parse(local64 + "a@x.example");
  ASSERT_FALSE(too_long_local);
  EXPECT_NE(too_long_local.error().message.find("64"), std::string::npos);

  const std::string label(63, 'b');
  const std::string domain = label + "." + label + "." + label + ".example";  // 199 octets
  EXPECT_TRUE(Address::parse(std::string(54, 'a') + "@" + domain));           // 254
  EXPECT_FALSE(Address::parse(std::string(55, 'a') + "@" + domain));          // 255
  EXPECT_FALSE(Address::parse("a@" + std::string(64, 'c') + ".example"));
}

// The limits hold for the address as stored: "bü.example" is stored as "xn--b-eha.example",
// longer than it was written. Found by the address fuzzer (fuzz/seeds/address_fuzzer/
// idn_grows_past_254): parse accepted an address whose stored form did not parse again.
TEST(Address, LimitsHoldForTheStoredForm) {
  std::string domain;
  for (int i = 0; i < 19; ++i) domain += "bü.";
  domain += "example";  // 83 octets written, 197 as A-labels (xn--b-eha.)
  ASSERT_LE(("a@" + domain).size(), kMaxAddress);
  const auto fits = Address::parse(std::string(56, 'a') + "@" + domain);
  ASSERT_TRUE(fits) << fits.error().message;
  EXPECT_EQ(fits->str().size(), 254u);
  EXPECT_TRUE(Address::parse(fits->str()));
  const auto grows = Address::parse(std::string(57, 'a') + "@" + domain);  // 255 as stored
  ASSERT_FALSE(grows);
  EXPECT_NE(grows.error().message.find("A-labels"), std::string::npos);
}

TEST(Address, WithoutItsExtension) {
  const auto base = [](std::string_view text, std::string_view delimiters = "+") {
    const auto b = without_extension(Address::parse(text).value(), delimiters);
    return b ? b->str() : std::string("-");
  };
  EXPECT_EQ(base("Alice+News@Example.com"), "Alice@example.com");
  EXPECT_EQ(base("alice+news+more@example.com"), "alice@example.com");  // at the first
  EXPECT_EQ(base("alice+@example.com"), "alice@example.com");
  EXPECT_EQ(base("alice@example.com"), "-");
  EXPECT_EQ(base("+news@example.com"), "-");           // no local part before it
  EXPECT_EQ(base("alice+news@example.com", ""), "-");  // sub-addressing off
  EXPECT_EQ(base("owner-list@example.com", "+-"), "owner@example.com");
  EXPECT_EQ(base("alice+x-y@example.com", "+-"), "alice@example.com");
  EXPECT_EQ(base("alice-news@example.com"), "-");
  EXPECT_EQ(base("al.+x@example.com"), "-");         // "al." is no address
  EXPECT_EQ(base("\"al ice+x\"@example.com"), "-");  // quoted: left alone
  EXPECT_EQ(base("jörg+x@example.com"), "jörg@example.com");
}

TEST(Domain, LowerCasesAndDropsTrailingDot) {
  EXPECT_EQ(parse_domain("Acme.Example.").value(), "acme.example");
  EXPECT_FALSE(parse_domain(""));
  EXPECT_FALSE(parse_domain("."));
}

// RFC 6531 mail may name a domain in U-labels: it is kept as its A-labels (IDNA2008, UTS #46
// non-transitional), so a domain registered either way matches mail written either way.
TEST(Domain, InternationalisedDomainsAreKeptAsALabels) {
  EXPECT_EQ(parse_domain("B\xC3\xBC"
                         "cher.Example")
                .value(),
            "xn--bcher-kva.example");  // Bücher
  EXPECT_EQ(parse_domain("xn--bcher-kva.example").value(), "xn--bcher-kva.example");
  EXPECT_EQ(parse_domain("fa\xC3\x9F.de").value(), "xn--fa-hia.de");  // faß: not "fass"
  const auto u = Address::parse(
                     "J\xC3\xBCrgen@b\xC3\xBC"
                     "cher.example")
                     .value();
  EXPECT_EQ(u.domain(), "xn--bcher-kva.example");
  EXPECT_EQ(u.local(), "J\xC3\xBCrgen");
  EXPECT_EQ(u, Address::parse("J\xC3\xBCrgen@XN--BCHER-KVA.example").value());
  for (const char* bad : {"\xE2\x98\x83.example",  // a snowman: disallowed in IDNA2008
                          "-\xC3\xBC.example",     // a hyphen at the start of a label
                          "b\xC3.example"}) {      // not UTF-8
    const auto r = parse_domain(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("domain"), std::string::npos) << r.error().message;
  }
  std::string long_label;
  for (int i = 0; i < 70; ++i) long_label += "\xC3\xBC";
  EXPECT_FALSE(parse_domain(long_label + ".example"));  // its A-label is longer than 63
}

TEST(Utf8, RejectsOverlongsAndSurrogates) {
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("\xF0\x9F\x93\xA7"));   // U+1F4E7
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xB0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));          // truncated
}

}  // namespace
}  // namespace mailroster::core
