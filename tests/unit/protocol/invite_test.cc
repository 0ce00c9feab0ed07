#include "rhizome/protocol/invite.h"

#include <gtest/gtest.h>

#include <cctype>

#include "base32.h"
#include "rhizome/crypto/hash.h"
#include "wire_test_util.h"

namespace rhizome::protocol {
namespace {

using testing::PbWriter;

void ExpectSameInvite(const Invite& a, const Invite& b) {
  EXPECT_EQ(a.invite_key, b.invite_key);
  EXPECT_TRUE(a.invite_secret.ConstantTimeEquals(b.invite_secret));
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  EXPECT_EQ(a.expires_at, b.expires_at);
  EXPECT_EQ(a.relay.noise_key, b.relay.noise_key);
  EXPECT_EQ(a.relay.signing_key, b.relay.signing_key);
  EXPECT_EQ(a.relay.host, b.relay.host);
  EXPECT_EQ(a.relay.port, b.relay.port);
  EXPECT_EQ(a.relay.versions, b.relay.versions);
  EXPECT_TRUE(a.relay.psk.ConstantTimeEquals(b.relay.psk));
  EXPECT_EQ(a.request_queue_id, b.request_queue_id);
  EXPECT_EQ(a.multi_use, b.multi_use);
  EXPECT_EQ(a.direct_addresses, b.direct_addresses);
}

class InviteTest : public testing::WireTest {
 protected:
  void SetUp() override {
    WireTest::SetUp();
    invite_ = testing::SampleInvite(rng_);
  }
  // Hand-written invite (docs/protocol/invite.md) with one field replaced.
  Bytes InviteWith(std::uint32_t replace_field, const PbWriter& replacement) {
    PbWriter w;
    auto field = [&](std::uint32_t n, auto&& write) {
      if (n == replace_field) {
        w.Raw(replacement.bytes());
      } else {
        write();
      }
    };
    const auto& r = invite_.relay;
    field(1, [&] { w.Varint(1, 1); });
    field(2, [&] { w.Len(2, invite_.invite_key); });
    field(3, [&] { w.Len(3, invite_.invite_secret.expose()); });
    field(4, [&] { w.Len(4, invite_.fingerprint); });
    field(5, [&] { w.Varint(5, invite_.expires_at); });
    field(6, [&] {
      // versions as protobuf writes them: packed (the parser also takes unpacked).
      w.Msg(6, PbWriter().Len(1, r.noise_key).Len(2, r.signing_key).Len(3, r.host).Varint(4, r.port).Len(5, Bytes{1}));
    });
    field(7, [&] { w.Len(7, invite_.request_queue_id); });
    return w.bytes();
  }
  Errc ErrorOf(ByteSpan bytes) {
    auto r = ParseInvite(bytes);
    EXPECT_FALSE(r.ok());
    return r.ok() ? Errc::kInternal : r.error().code;
  }
  Errc CodeErrorOf(std::string_view text) {
    auto r = ParseInviteCode(text);
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? Errc::kInternal : r.error().code;
  }
  // Text code around arbitrary payload bytes, with a correct checksum.
  static std::string CodeFor(ByteSpan payload) {
    crypto::Blake2b h(32);
    h.Update(AsBytes("rhizome/v1/invite-code-checksum")).Update(payload);
    ByteArray<32> digest;
    h.Final(digest);
    Bytes raw(payload.begin(), payload.end());
    raw.insert(raw.end(), digest.begin(), digest.begin() + 4);
    return "rhizome-invite:" + internal::Base32Encode(raw);
  }
  Invite invite_;
};

TEST_F(InviteTest, BinaryRoundTrips) {
  auto bytes = SerializeInvite(invite_);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_EQ(*bytes, InviteWith(0, {}));  // matches the documented layout byte for byte
  auto back = ParseInvite(*bytes);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ExpectSameInvite(*back, invite_);
}

TEST_F(InviteTest, RoundTripsWithEveryOptionalField) {
  invite_.relay = testing::SampleRelay(rng_, true);
  invite_.multi_use = true;
  invite_.direct_addresses = {{"192.0.2.1", 7000}, {"2001:db8::1", 7001}, {"peer.example", 1}};
  auto back = ParseInvite(SerializeInvite(invite_).value());
  ASSERT_TRUE(back.ok()) << back.error().message;
  ExpectSameInvite(*back, invite_);
  auto text = ParseInviteCode(FormatInviteCode(invite_).value());
  ASSERT_TRUE(text.ok()) << text.error().message;
  ExpectSameInvite(*text, invite_);
}

TEST_F(InviteTest, KnownAnswer) {
  // docs/protocol/invite.md, "Example".
  Invite invite;
  invite.invite_key = crypto::X25519FromSecret(Bytes(32, 0x01)).value().public_key;
  invite.invite_secret = crypto::SecretBytes::CopyFrom(Bytes(32, 0x02));
  invite.fingerprint.fill(0x03);
  invite.expires_at = 1767225600;
  for (std::size_t i = 0; i < 32; ++i) invite.relay.noise_key[i] = static_cast<std::uint8_t>(i + 1);
  invite.relay.signing_key = crypto::Ed25519FromSeed(Bytes(32, 0x42)).value().public_key;
  invite.relay.host = "relay.example.org";
  invite.relay.port = 4433;
  invite.relay.versions = {1};
  invite.request_queue_id.fill(0x04);
  auto code = FormatInviteCode(invite);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code,
            "rhizome-invite:baareife4cjjfnsryj4ls5zmk2pv7kn3cpmqnndkw2gj36o4fncat6fcbencaaqca"
            "ibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqceiiagaydambqgaydambqgaydambqgkea6"
            "llmubrslufcaaicamcakbqhbaequcymbuha6earcijrifiwc4mbsgq3dqor4hzaciqccuxy2gnxshjei"
            "uzefyk7f2vwzn6p7j5wuxwtaclzmdqgtca5weq2cfzgk3dbpexgk6dbnvygyzjon5zgoigreivacaj2c"
            "acaibaeaqcaibaeaqcaibaeaqcawpjua4");
  auto back = ParseInviteCode(*code);
  ASSERT_TRUE(back.ok());
  ExpectSameInvite(*back, invite);
}

TEST_F(InviteTest, TextCodeRoundTrips) {
  auto code = FormatInviteCode(invite_);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(code->rfind("rhizome-invite:", 0), 0u);
  for (char c : code->substr(15)) {
    ASSERT_TRUE((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')) << c;
  }
  auto back = ParseInviteCode(*code);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ExpectSameInvite(*back, invite_);
}

TEST_F(InviteTest, TextCodeIsCaseInsensitiveAndIgnoresWhitespace) {
  const std::string code = FormatInviteCode(invite_).value();
  std::string upper;
  for (char c : code) upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  auto a = ParseInviteCode(upper);
  ASSERT_TRUE(a.ok());
  ExpectSameInvite(*a, invite_);
  std::string wrapped = "\n  ";
  for (std::size_t i = 0; i < code.size(); i += 60) wrapped += code.substr(i, 60) + "\r\n";
  auto b = ParseInviteCode(wrapped);
  ASSERT_TRUE(b.ok());
  ExpectSameInvite(*b, invite_);
}

TEST_F(InviteTest, EveryTypoInTheCodeIsDetected) {
  const std::string code = FormatInviteCode(invite_).value();
  for (std::size_t i = 15; i < code.size(); ++i) {
    std::string typo = code;
    typo[i] = typo[i] == 'q' ? 'r' : 'q';
    auto r = ParseInviteCode(typo);
    ASSERT_FALSE(r.ok()) << i;
    EXPECT_EQ(r.error().code, Errc::kMalformed);
  }
}

TEST_F(InviteTest, SwappedAdjacentCharactersAreDetected) {
  const std::string code = FormatInviteCode(invite_).value();
  for (std::size_t i = 15; i + 1 < code.size(); ++i) {
    if (code[i] == code[i + 1]) continue;
    std::string typo = code;
    std::swap(typo[i], typo[i + 1]);
    EXPECT_FALSE(ParseInviteCode(typo).ok()) << i;
  }
}

TEST_F(InviteTest, BadChecksumIsReported) {
  const std::string code = FormatInviteCode(invite_).value();
  Bytes raw = internal::Base32Decode(std::string_view(code).substr(15)).value();
  raw.back() ^= 0x01;
  auto r = ParseInviteCode("rhizome-invite:" + internal::Base32Encode(raw));
  ASSERT_FALSE(r.ok());
  EXPECT_STREQ(r.error().message, "invite code checksum mismatch");
}

TEST_F(InviteTest, EveryTruncationOfTheCodeIsRejected) {
  const std::string code = FormatInviteCode(invite_).value();
  for (std::size_t n = 0; n < code.size(); ++n) {
    EXPECT_FALSE(ParseInviteCode(std::string_view(code).substr(0, n)).ok()) << n;
  }
}

TEST_F(InviteTest, EveryTruncationOfTheBinaryIsRejected) {
  // The last field (request queue id) is required, so no strict prefix is valid.
  const Bytes bytes = SerializeInvite(invite_).value();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(ParseInvite(ByteSpan(bytes).first(n)).ok()) << n;
  }
}

TEST_F(InviteTest, CodeCatalogue) {
  const std::string code = FormatInviteCode(invite_).value();
  const std::string body = code.substr(15);
  EXPECT_EQ(CodeErrorOf(""), Errc::kMalformed);
  EXPECT_EQ(CodeErrorOf("rhizome-invite:"), Errc::kMalformed);
  EXPECT_EQ(CodeErrorOf("rhizome-invite" + body), Errc::kMalformed);
  EXPECT_EQ(CodeErrorOf("rhizome-relay:" + body), Errc::kMalformed);
  EXPECT_EQ(CodeErrorOf("rhizome-invite:" + body + "="), Errc::kMalformed);
  EXPECT_EQ(CodeErrorOf("rhizome-invite:" + body + "0"), Errc::kMalformed);
  EXPECT_EQ(CodeErrorOf("rhizome-invite:" + body + "a"), Errc::kMalformed);  // trailing garbage
  EXPECT_EQ(CodeErrorOf(code + code.substr(15)), Errc::kMalformed);           // doubled payload
  EXPECT_EQ(CodeErrorOf("rhizome-invite:aaaaaaa"), Errc::kMalformed);       // shorter than a checksum
  // A valid checksum around bytes that are not an invite.
  EXPECT_EQ(CodeErrorOf(CodeFor(AsBytes("not an invite at all"))), Errc::kMalformed);
  // A valid checksum around an invite of a newer version.
  EXPECT_EQ(CodeErrorOf(CodeFor(InviteWith(1, PbWriter().Varint(1, 2)))), Errc::kUnsupported);
  // Over-long text, even if it is only whitespace.
  EXPECT_EQ(CodeErrorOf(code + std::string(kMaxInviteCodeChars, ' ')), Errc::kLimitExceeded);
  // A payload above the binary limit behind a valid checksum.
  EXPECT_EQ(CodeErrorOf(CodeFor(Bytes(kMaxInviteBytes + 1, 0))), Errc::kLimitExceeded);
}

TEST_F(InviteTest, EachFieldWrongIsRejected) {
  struct Case {
    std::uint32_t field;
    PbWriter replacement;
    Errc expected;
  };
  const Case cases[] = {
      {1, PbWriter(), Errc::kMalformed},                       // no version
      {1, PbWriter().Varint(1, 2), Errc::kUnsupported},        // newer version
      {1, PbWriter().Varint(1, 1000), Errc::kUnsupported},
      {2, PbWriter(), Errc::kMalformed},                       // no invite key
      {2, PbWriter().Filled(2, 31, 1), Errc::kMalformed},
      {2, PbWriter().Filled(2, 33, 1), Errc::kMalformed},
      {2, PbWriter().Filled(2, 32, 0), Errc::kMalformed},
      {3, PbWriter(), Errc::kMalformed},                       // no secret
      {3, PbWriter().Filled(3, 16, 1), Errc::kMalformed},
      {3, PbWriter().Filled(3, 32, 0), Errc::kMalformed},
      {4, PbWriter(), Errc::kMalformed},                       // no fingerprint
      {4, PbWriter().Filled(4, 32, 1), Errc::kMalformed},
      {4, PbWriter().Filled(4, 16, 0), Errc::kMalformed},
      {5, PbWriter(), Errc::kMalformed},                       // no expiry
      {6, PbWriter(), Errc::kMalformed},                       // no relay
      {6, PbWriter().Msg(6, PbWriter()), Errc::kMalformed},    // empty relay
      {7, PbWriter(), Errc::kMalformed},                       // no queue id
      {7, PbWriter().Filled(7, 32, 1), Errc::kMalformed},
      {7, PbWriter().Filled(7, 16, 0), Errc::kMalformed},
      {7, PbWriter().Varint(7, 1), Errc::kMalformed},          // wrong wire type
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ErrorOf(InviteWith(c.field, c.replacement)), c.expected) << "field " << c.field;
  }
}

TEST_F(InviteTest, RelayOfNewerVersionOnlyIsUnsupported) {
  const auto& r = invite_.relay;
  auto relay = PbWriter().Len(1, r.noise_key).Len(2, r.signing_key).Len(3, r.host).Varint(4, r.port).Varint(5, 2);
  EXPECT_EQ(ErrorOf(InviteWith(6, PbWriter().Msg(6, relay))), Errc::kUnsupported);
}

TEST_F(InviteTest, DirectAddressesAreCheckedAndCapped) {
  PbWriter base;
  base.Raw(InviteWith(0, {}));
  EXPECT_TRUE(ParseInvite(PbWriter(base).Msg(9, PbWriter().Len(1, "::1").Varint(2, 9)).bytes()).ok());
  EXPECT_EQ(ErrorOf(PbWriter(base).Msg(9, PbWriter().Len(1, "0::1").Varint(2, 9)).bytes()),
            Errc::kMalformed);  // not canonical
  EXPECT_EQ(ErrorOf(PbWriter(base).Msg(9, PbWriter().Len(1, "::1").Varint(2, 0)).bytes()),
            Errc::kMalformed);
  PbWriter many(base);
  for (std::size_t i = 0; i <= kMaxDirectAddresses; ++i) many.Msg(9, PbWriter().Len(1, "::1").Varint(2, 9));
  EXPECT_EQ(ErrorOf(many.bytes()), Errc::kLimitExceeded);
}

TEST_F(InviteTest, UnknownFieldsAreIgnoredAndNotReserialised) {
  const Bytes canonical = SerializeInvite(invite_).value();
  PbWriter w;
  w.Raw(canonical).Len(50, "onion address, one day").Varint(51, 3);
  auto back = ParseInvite(w.bytes());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(SerializeInvite(*back).value(), canonical);
}

TEST_F(InviteTest, OversizeBinaryIsRejectedBeforeParsing) {
  Bytes big = SerializeInvite(invite_).value();
  big.resize(kMaxInviteBytes + 1, 0);
  EXPECT_EQ(ErrorOf(big), Errc::kLimitExceeded);
}

TEST_F(InviteTest, TrailingGarbageIsRejected) {
  Bytes bytes = SerializeInvite(invite_).value();
  bytes.push_back(0x07);  // an incomplete field header
  EXPECT_EQ(ErrorOf(bytes), Errc::kMalformed);
}

TEST_F(InviteTest, SerializeRefusesInvalidInvites) {
  Invite bad = invite_.Clone();
  bad.invite_secret = crypto::SecretBytes();
  EXPECT_FALSE(SerializeInvite(bad).ok());
  bad = invite_.Clone();
  bad.expires_at = 0;
  EXPECT_FALSE(FormatInviteCode(bad).ok());
  bad = invite_.Clone();
  bad.request_queue_id = {};
  EXPECT_FALSE(SerializeInvite(bad).ok());
  bad = invite_.Clone();
  bad.direct_addresses.assign(kMaxDirectAddresses + 1, {"::1", 1});
  EXPECT_EQ(SerializeInvite(bad).error().code, Errc::kLimitExceeded);
}

TEST_F(InviteTest, ExpiryIsInclusive) {
  EXPECT_FALSE(InviteExpired(invite_, invite_.expires_at - 1));
  EXPECT_TRUE(InviteExpired(invite_, invite_.expires_at));
  EXPECT_TRUE(InviteExpired(invite_, invite_.expires_at + 1));
}

TEST_F(InviteTest, LargestInviteFitsItsLimits) {
  std::string host;
  while (host.size() + 64 <= 253) host += std::string(63, 'h') + ".";
  host += std::string(253 - host.size(), 'z');
  invite_.relay = testing::SampleRelay(rng_, true);
  invite_.relay.host = host;
  invite_.relay.versions = {1, 2, 3, 4, 5, 6, 7, 65535};
  invite_.expires_at = ~std::uint64_t{0};
  invite_.multi_use = true;
  invite_.direct_addresses.assign(kMaxDirectAddresses, {host, 65535});
  auto bytes = SerializeInvite(invite_);
  ASSERT_TRUE(bytes.ok());
  EXPECT_LE(bytes->size(), kMaxInviteBytes);
  auto code = FormatInviteCode(invite_);
  ASSERT_TRUE(code.ok());
  EXPECT_LE(code->size(), kMaxInviteCodeChars);
  EXPECT_TRUE(ParseInviteCode(*code).ok());
}

TEST_F(InviteTest, DefaultInviteCodeIsShortEnoughForAQrCode) {
  // Without direct addresses or psk, the code stays well inside a version-20 QR
  // code in alphanumeric mode (858 characters).
  const std::string code = FormatInviteCode(invite_).value();
  EXPECT_LT(code.size(), 400u);
}

}  // namespace
}  // namespace rhizome::protocol
