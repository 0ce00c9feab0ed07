#include "rhizome/protocol/wire_types.h"

#include <gtest/gtest.h>

#include "base32.h"
#include "rhizome/crypto/random.h"

namespace rhizome::protocol {
namespace {

TEST(Base32, KnownAnswersFromRfc4648) {
  // RFC 4648 §10 test vectors, lowercase and without padding.
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"", ""},           {"f", "my"},           {"fo", "mzxq"},           {"foo", "mzxw6"},
      {"foob", "mzxw6yq"}, {"fooba", "mzxw6ytb"}, {"foobar", "mzxw6ytboi"},
  };
  for (auto [plain, encoded] : cases) {
    EXPECT_EQ(internal::Base32Encode(AsBytes(plain)), encoded);
    auto back = internal::Base32Decode(encoded);
    ASSERT_TRUE(back.ok()) << encoded;
    EXPECT_EQ(std::string(back->begin(), back->end()), plain);
  }
}

TEST(Base32, DecodingIsCaseInsensitive) {
  EXPECT_EQ(internal::Base32Decode("MZXW6YTBOI").value(), internal::Base32Decode("mzxw6ytboi").value());
  EXPECT_EQ(internal::Base32Decode("MzXw6YtBoI").value(), internal::Base32Decode("mzxw6ytboi").value());
}

TEST(Base32, RoundTripsEveryLengthUpTo70Bytes) {
  crypto::DeterministicRandom rng(5);
  for (std::size_t n = 0; n <= 70; ++n) {
    Bytes b(n);
    rng.Fill(b);
    const std::string text = internal::Base32Encode(b);
    EXPECT_EQ(text.size(), internal::Base32EncodedSize(n));
    EXPECT_EQ(internal::Base32Decode(text).value(), b);
  }
}

TEST(Base32, RejectsPaddingForeignCharactersImpossibleLengthsAndTrailingBits) {
  for (std::string_view bad : {"my======", "m1", "m8", "my!", "a", "abc", "abcdef", "mz", "mzxw6z"}) {
    EXPECT_FALSE(internal::Base32Decode(bad).ok()) << bad;
  }
}

TEST(Host, AcceptsNamesAndAddressesAndCanonicalises) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"relay.example.org", "relay.example.org"},
      {"Relay.Example.ORG", "relay.example.org"},
      {"localhost", "localhost"},
      {"a-b.c1", "a-b.c1"},
      {"192.0.2.1", "192.0.2.1"},
      {"0.0.0.0", "0.0.0.0"},
      {"255.255.255.255", "255.255.255.255"},
      {"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
      {"::1", "::1"},
      {"abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuv.onion",
       "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuv.onion"},
  };
  for (auto [in, canonical] : cases) {
    auto out = NormalizeHost(in);
    ASSERT_TRUE(out.ok()) << in;
    EXPECT_EQ(*out, canonical);
    EXPECT_EQ(IsCanonicalHost(in), in == canonical) << in;
  }
}

TEST(Host, RejectsMalformedHosts) {
  const std::string long_label(64, 'a');
  std::string long_name;
  while (long_name.size() < 254) long_name += "abcdefghi.";
  long_name.resize(254);
  const std::string_view bad[] = {
      "", ".", "a..b", ".a", "a.", "-a", "a-", "a_b", "a b", "a/b", "exa mple",
      "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.04", "1234.1.1.1", "1.2.3.4.",
      "example.123", "fe80::1%eth0", "[::1]", "1::2::3", ":::", "\xc3\xa9t\xc3\xa9.org",
      std::string_view("a\0b", 3),
  };
  for (auto h : bad) EXPECT_FALSE(NormalizeHost(h).ok()) << h;
  EXPECT_FALSE(NormalizeHost(long_label + ".org").ok());
  EXPECT_FALSE(NormalizeHost(long_name).ok());
  EXPECT_TRUE(NormalizeHost(std::string(63, 'a') + ".org").ok());
}

TEST(Host, DnsNameOfExactly253BytesIsAccepted) {
  std::string name;
  while (name.size() + 64 <= 253) name += std::string(63, 'a') + ".";
  name += std::string(253 - name.size(), 'b');
  ASSERT_EQ(name.size(), 253u);
  EXPECT_TRUE(NormalizeHost(name).ok());
}

TEST(VersionList, AcceptsAscendingListsWithACommonVersion) {
  EXPECT_TRUE(ValidateVersionList(std::vector<std::uint16_t>{1}).ok());
  EXPECT_TRUE(ValidateVersionList(std::vector<std::uint16_t>{1, 2, 7}).ok());
}

TEST(VersionList, RejectsEmptyZeroUnsortedDuplicateAndTooLong) {
  EXPECT_EQ(ValidateVersionList({}).error().code, Errc::kMalformed);
  EXPECT_EQ(ValidateVersionList(std::vector<std::uint16_t>{0, 1}).error().code, Errc::kMalformed);
  EXPECT_EQ(ValidateVersionList(std::vector<std::uint16_t>{2, 1}).error().code, Errc::kMalformed);
  EXPECT_EQ(ValidateVersionList(std::vector<std::uint16_t>{1, 1}).error().code, Errc::kMalformed);
  EXPECT_EQ(ValidateVersionList(std::vector<std::uint16_t>{1, 2, 3, 4, 5, 6, 7, 8, 9}).error().code,
            Errc::kLimitExceeded);
}

TEST(VersionList, OnlyNewerVersionsIsUnsupported) {
  auto status = ValidateVersionList(std::vector<std::uint16_t>{2, 3});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, Errc::kUnsupported);
}

TEST(DirectAddressValidation, RefusesNonCanonicalHostsAndPortZero) {
  EXPECT_TRUE(ValidateDirectAddress({"192.0.2.1", 1}).ok());
  EXPECT_FALSE(ValidateDirectAddress({"192.0.2.1", 0}).ok());
  EXPECT_FALSE(ValidateDirectAddress({"Example.org", 80}).ok());
  EXPECT_FALSE(ValidateDirectAddress({"", 80}).ok());
}

TEST(DirectAddressText, ParsesHostPortAndBracketedIpv6) {
  auto v4 = ParseDirectAddress("192.0.2.1:7000");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "192.0.2.1");
  EXPECT_EQ(v4->port, 7000);
  auto name = ParseDirectAddress("Rep.Example.org:65535");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name->host, "rep.example.org");
  auto v6 = ParseDirectAddress("[2001:DB8::0:1]:1");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_EQ(FormatDirectAddress(*v6), "[2001:db8::1]:1");
  EXPECT_EQ(FormatDirectAddress(*v4), "192.0.2.1:7000");
  for (const auto* text : {"192.0.2.1:7000", "[::1]:9", "host.example:80"}) {
    auto parsed = ParseDirectAddress(text);
    ASSERT_TRUE(parsed.ok()) << text;
    EXPECT_EQ(FormatDirectAddress(*parsed), text);
  }
}

TEST(DirectAddressText, RefusesMalformedText) {
  for (const auto* text :
       {"", ":", "192.0.2.1", "192.0.2.1:", ":7000", "192.0.2.1:0", "192.0.2.1:65536",
        "192.0.2.1:07000", "192.0.2.1:70a", "192.0.2.1:-1", "::1:7000", "[192.0.2.1]:7000",
        "[::1:7000", "bad_host:1", "-a.example:1", "192.0.2.1:1234567", "[::1]:+1", " 192.0.2.1:1"}) {
    auto parsed = ParseDirectAddress(text);
    EXPECT_FALSE(parsed.ok()) << text;
  }
  const std::string longest(kMaxDirectAddressTextBytes + 1, 'a');
  auto too_long = ParseDirectAddress(longest);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().code, Errc::kLimitExceeded);
}

}  // namespace
}  // namespace rhizome::protocol
