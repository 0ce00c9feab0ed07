#include "rhizome/protocol/relay_address.h"

#include <gtest/gtest.h>

#include "base32.h"
#include "wire_test_util.h"

namespace rhizome::protocol {
namespace {

using testing::SampleRelay;

void ExpectSameAddress(const RelayAddress& a, const RelayAddress& b) {
  EXPECT_EQ(a.noise_key, b.noise_key);
  EXPECT_EQ(a.signing_key, b.signing_key);
  EXPECT_EQ(a.host, b.host);
  EXPECT_EQ(a.port, b.port);
  EXPECT_EQ(a.versions, b.versions);
  EXPECT_TRUE(a.psk.ConstantTimeEquals(b.psk));
}

// Builds the text form by hand from parts, so single parts can be broken.
std::string Address(const PublicKey& noise, const PublicKey& signing, std::string_view rest,
                    bool good_checksum = true) {
  Bytes keys;
  Append(keys, noise);
  Append(keys, signing);
  auto sum = RelayAddressChecksum(noise, signing);
  if (!good_checksum) sum[0] ^= 1;
  Append(keys, sum);
  return "rhizome-relay://" + internal::Base32Encode(keys) + "@" + std::string(rest);
}

class RelayAddressTest : public testing::WireTest {
 protected:
  void SetUp() override {
    WireTest::SetUp();
    relay_ = SampleRelay(rng_);
  }
  std::string With(std::string_view rest) { return Address(relay_.noise_key, relay_.signing_key, rest); }
  Errc ErrorOf(std::string_view text) {
    auto r = ParseRelayAddress(text);
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? Errc::kInternal : r.error().code;
  }
  RelayAddress relay_;
};

TEST_F(RelayAddressTest, RoundTripsWithoutPsk) {
  auto text = FormatRelayAddress(relay_);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->rfind("rhizome-relay://", 0), 0u);
  EXPECT_NE(text->find("@relay.example.org:4433?v=1"), std::string::npos);
  EXPECT_EQ(text->find("psk="), std::string::npos);
  auto back = ParseRelayAddress(*text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ExpectSameAddress(*back, relay_);
}

TEST_F(RelayAddressTest, RoundTripsWithPskIpv6AndSeveralVersions) {
  auto relay = SampleRelay(rng_, true);
  relay.host = "2001:db8::7";
  relay.versions = {1, 2, 9};
  auto text = FormatRelayAddress(relay);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("@[2001:db8::7]:4433?v=1,2,9&psk="), std::string::npos);
  auto back = ParseRelayAddress(*text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ExpectSameAddress(*back, relay);
}

TEST_F(RelayAddressTest, KnownAnswer) {
  // Fixed keys so the documented example (docs/protocol/relay-address.md) stays true.
  RelayAddress relay;
  for (std::size_t i = 0; i < 32; ++i) relay.noise_key[i] = static_cast<std::uint8_t>(i + 1);
  relay.signing_key = crypto::Ed25519FromSeed(Bytes(32, 0x42)).value().public_key;
  relay.host = "relay.example.org";
  relay.port = 4433;
  relay.versions = {1};
  relay.psk = crypto::SecretBytes::CopyFrom(Bytes(32, 0x07));
  auto text = FormatRelayAddress(relay);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "rhizome-relay://aebagbafaydqqcikbmga2dqpcaireeyuculbogazdinryhi6d4qccuxy2gnxshj"
            "eiuzefyk7f2vwzn6p7j5wuxwtaclzmdqgtca5wesbrj3bw@relay.example.org:4433?v=1"
            "&psk=a4dqobyha4dqobyha4dqobyha4dqobyha4dqobyha4dqobyha4dq");
  EXPECT_TRUE(ParseRelayAddress(*text).ok());
}

TEST_F(RelayAddressTest, AcceptsUppercaseWhitespaceAndParameterOrder) {
  auto relay = SampleRelay(rng_, true);
  const std::string text = FormatRelayAddress(relay).value();
  std::string upper;
  for (char c : text) upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  // Uppercase everything except the parameter names, which are case-sensitive.
  const auto v = upper.find("?V=");
  upper.replace(v, 3, "?v=");
  const auto p = upper.find("&PSK=");
  upper.replace(p, 5, "&psk=");
  auto back = ParseRelayAddress(upper);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ExpectSameAddress(*back, relay);

  std::string wrapped = "  " + text.substr(0, 40) + "\n" + text.substr(40, 50) + "\r\n\t" +
                        text.substr(90) + " \n";
  ASSERT_TRUE(ParseRelayAddress(wrapped).ok());

  const auto q = text.find('?');
  const auto amp = text.find('&');
  std::string swapped = text.substr(0, q) + "?" + text.substr(amp + 1) + "&" +
                        text.substr(q + 1, amp - q - 1);
  auto reordered = ParseRelayAddress(swapped);
  ASSERT_TRUE(reordered.ok());
  ExpectSameAddress(*reordered, relay);
}

TEST_F(RelayAddressTest, HostIsCanonicalised) {
  auto back = ParseRelayAddress(With("Relay.EXAMPLE.org:1?v=1"));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->host, "relay.example.org");
  auto v6 = ParseRelayAddress(With("[2001:DB8:0::1]:65535?v=1"));
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_EQ(v6->port, 65535);
}

TEST_F(RelayAddressTest, EveryTruncationIsRejected) {
  const std::string text = FormatRelayAddress(relay_).value();
  for (std::size_t n = 0; n < text.size(); ++n) {
    EXPECT_FALSE(ParseRelayAddress(std::string_view(text).substr(0, n)).ok()) << n;
  }
}

TEST_F(RelayAddressTest, EveryChangedKeyCharacterIsCaught) {
  const std::string text = FormatRelayAddress(relay_).value();
  const std::size_t begin = std::string_view("rhizome-relay://").size();
  const std::size_t end = text.find('@');
  ASSERT_EQ(end - begin, 109u);
  for (std::size_t i = begin; i < end; ++i) {
    std::string typo = text;
    typo[i] = typo[i] == 'a' ? 'b' : 'a';
    auto r = ParseRelayAddress(typo);
    ASSERT_FALSE(r.ok()) << i;
    EXPECT_EQ(r.error().code, Errc::kMalformed);
  }
}

TEST_F(RelayAddressTest, ChecksumMismatchIsReported) {
  auto r = ParseRelayAddress(Address(relay_.noise_key, relay_.signing_key, "h:1?v=1", false));
  ASSERT_FALSE(r.ok());
  EXPECT_STREQ(r.error().message, "relay address checksum mismatch");
}

TEST_F(RelayAddressTest, MalformedCatalogue) {
  const std::string psk = internal::Base32Encode(Bytes(32, 9));
  const std::string_view bad_rests[] = {
      "relay.example.org?v=1",            // no port
      "relay.example.org:?v=1",           // empty port
      "relay.example.org:0?v=1",          // port 0
      "relay.example.org:65536?v=1",      // port too large
      "relay.example.org:0443?v=1",       // leading zero
      "relay.example.org:44a3?v=1",       // not decimal
      "relay.example.org:-1?v=1",         // sign
      "relay..org:1?v=1",                 // bad host
      ":1?v=1",                           // empty host
      "2001:db8::1:1?v=1",                // IPv6 without brackets
      "[2001:db8::1:1?v=1",               // unclosed bracket
      "[192.0.2.1]:1?v=1",                // brackets around IPv4
      "[2001:db8::1]1?v=1",               // no colon after bracket
      "[fe80::1%25eth0]:1?v=1",           // zone id
      "relay.example.org:1",              // no versions
      "relay.example.org:1?",             // empty query
      "relay.example.org:1?v=",           // empty version
      "relay.example.org:1?v=0",          // version 0
      "relay.example.org:1?v=01",         // leading zero
      "relay.example.org:1?v=1,1",        // duplicate
      "relay.example.org:1?v=2,1",        // not ascending
      "relay.example.org:1?v=1,",         // trailing comma
      "relay.example.org:1?v=65536",      // above u16
      "relay.example.org:1?v=1&v=1",      // repeated parameter
      "relay.example.org:1?v=1&",         // empty parameter
      "relay.example.org:1?v",            // no '='
      "relay.example.org:1?v=1&psk=",     // empty psk
      "relay.example.org:1?v=1&psk=abc",  // short psk
      "relay.example.org:1?v=1#frag",     // fragment
      "user@relay.example.org:1?v=1",     // userinfo
  };
  for (auto rest : bad_rests) {
    EXPECT_EQ(ErrorOf(With(rest)), Errc::kMalformed) << rest;
  }
  // psk: all zeros, wrong size, repeated.
  const std::string zero_psk = internal::Base32Encode(Bytes(32, 0));
  EXPECT_EQ(ErrorOf(With("h:1?v=1&psk=" + zero_psk)), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(With("h:1?v=1&psk=" + internal::Base32Encode(Bytes(31, 9)))), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(With("h:1?v=1&psk=" + internal::Base32Encode(Bytes(33, 9)))), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(With("h:1?v=1&psk=" + psk + "&psk=" + psk)), Errc::kMalformed);
  EXPECT_TRUE(ParseRelayAddress(With("h:1?v=1&psk=" + psk)).ok());
}

TEST_F(RelayAddressTest, SchemeAndKeyBlockErrors) {
  const std::string good = FormatRelayAddress(relay_).value();
  const std::string after_scheme = good.substr(16);
  EXPECT_EQ(ErrorOf("rhizome-relay:/" + after_scheme), Errc::kMalformed);
  EXPECT_EQ(ErrorOf("http://" + after_scheme), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(""), Errc::kMalformed);
  EXPECT_EQ(ErrorOf("rhizome-relay://"), Errc::kMalformed);
  // No '@'.
  EXPECT_EQ(ErrorOf("rhizome-relay://" + after_scheme.substr(0, 109)), Errc::kMalformed);
  // Key block one character short or long.
  EXPECT_EQ(ErrorOf("rhizome-relay://" + after_scheme.substr(1)), Errc::kMalformed);
  EXPECT_EQ(ErrorOf("rhizome-relay://a" + after_scheme), Errc::kMalformed);
  // A character outside the alphabet.
  std::string bad = good;
  bad[20] = '1';
  EXPECT_EQ(ErrorOf(bad), Errc::kMalformed);
}

TEST_F(RelayAddressTest, InvalidSigningKeyIsRejectedEvenWithAGoodChecksum) {
  PublicKey zero{};
  EXPECT_EQ(ErrorOf(Address(relay_.noise_key, zero, "h:1?v=1")), Errc::kMalformed);
  PublicKey not_a_point;
  not_a_point.fill(0xff);
  EXPECT_EQ(ErrorOf(Address(relay_.noise_key, not_a_point, "h:1?v=1")), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(Address(zero, relay_.signing_key, "h:1?v=1")), Errc::kMalformed);
}

TEST_F(RelayAddressTest, NewerVersionsOnlyIsUnsupported) {
  EXPECT_EQ(ErrorOf(With("h:1?v=2")), Errc::kUnsupported);
  EXPECT_TRUE(ParseRelayAddress(With("h:1?v=1,2")).ok());
}

TEST_F(RelayAddressTest, UnknownParameterIsUnsupported) {
  EXPECT_EQ(ErrorOf(With("h:1?v=1&onion=abc")), Errc::kUnsupported);
  EXPECT_EQ(ErrorOf(With("h:1?V=1")), Errc::kUnsupported);  // names are case-sensitive
}

TEST_F(RelayAddressTest, TooManyVersionsIsLimitExceeded) {
  EXPECT_EQ(ErrorOf(With("h:1?v=1,2,3,4,5,6,7,8,9")), Errc::kLimitExceeded);
  EXPECT_TRUE(ParseRelayAddress(With("h:1?v=1,2,3,4,5,6,7,8")).ok());
}

TEST_F(RelayAddressTest, OverlongTextIsRejectedBeforeParsing) {
  std::string text = FormatRelayAddress(relay_).value();
  text += std::string(kMaxRelayAddressChars - text.size() + 1, ' ');
  EXPECT_EQ(ErrorOf(text), Errc::kLimitExceeded);
}

TEST_F(RelayAddressTest, FormatRefusesInvalidAddresses) {
  RelayAddress bad = relay_.Clone();
  bad.port = 0;
  EXPECT_FALSE(FormatRelayAddress(bad).ok());
  bad = relay_.Clone();
  bad.host = "Relay.example.org";  // not canonical
  EXPECT_FALSE(FormatRelayAddress(bad).ok());
  bad = relay_.Clone();
  bad.versions = {};
  EXPECT_FALSE(FormatRelayAddress(bad).ok());
  bad = relay_.Clone();
  bad.psk = crypto::SecretBytes::CopyFrom(Bytes(16, 1));
  EXPECT_FALSE(FormatRelayAddress(bad).ok());
  bad = relay_.Clone();
  bad.noise_key = {};
  EXPECT_FALSE(FormatRelayAddress(bad).ok());
}

TEST_F(RelayAddressTest, CloneIsADeepCopy) {
  auto relay = SampleRelay(rng_, true);
  auto copy = relay.Clone();
  ExpectSameAddress(copy, relay);
  EXPECT_NE(copy.psk.expose().data(), relay.psk.expose().data());
}

}  // namespace
}  // namespace rhizome::protocol
