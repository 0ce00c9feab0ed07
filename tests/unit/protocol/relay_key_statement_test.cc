// Relay key statements (docs/protocol/relay-key-statement.md): the canonical
// encoding (known answers computed independently with Python's `cryptography`
// Ed25519), strict parsing with a malformed catalogue, flip-any-bit, the wrong
// signing key, no rollback, and ApplyKeyStatement.
#include "rhizome/protocol/relay_key_statement.h"

#include <gtest/gtest.h>

#include "test_support.h"
#include "wire_test_util.h"

namespace rhizome::protocol {
namespace {

using rhizome::testing::Hex;

constexpr std::uint64_t kT0 = 1767225600;  // 2026-01-01T00:00:00Z

// Seed 42 x 32 -> this public key (RFC 8032 derivation).
constexpr std::string_view kSigningPublicHex =
    "197f6b23e16c8532c6abc838facd5ea789be0c76b2920334039bfa8b3d368d61";
// serial 1, noise key 01..20, psk 07 x 32, valid_from kT0, signed by seed 42 x 32.
constexpr std::string_view kClosedStatementHex =
    "7268697a6f6d652f76312f72656c61792d6b65792d73746174656d656e74"  // context (30)
    "0000000000000001"                                                  // serial
    "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"  // noise key
    "20"                                                                // psk_len
    "0707070707070707070707070707070707070707070707070707070707070707"  // psk
    "000000006955b900"                                                  // valid_from
    "5d88c19ad5995a232cf8d86797aa0879bea14a2fef94dde1050213eade2e99be"
    "a73741cf418fc8ae682af2b7684f80cfb55b88b8e2f3360ce3c1450c4f11cb00";  // signature
// serial 2, same noise key, open relay (psk_len 0).
constexpr std::string_view kOpenStatementHex =
    "7268697a6f6d652f76312f72656c61792d6b65792d73746174656d656e74"
    "0000000000000002"
    "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
    "00"
    "000000006955b900"
    "b043608f36a3d7da7ce93415ef04e50739dfb73ea13de084e518de90af41cda7"
    "edee9273885495c53583949862e047d47a7c77f0368d6b00d5c3c734abf15d0a";

constexpr std::size_t kSerialOffset = 30;
constexpr std::size_t kNoiseOffset = 38;
constexpr std::size_t kPskLenOffset = 70;

class RelayKeyStatementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rhizome::testing::InitCryptoOnce();
    auto seed = Bytes(32, 42);
    signing_ = crypto::Ed25519FromSeed(seed).value();
  }

  PublicKey SampleNoiseKey() const {
    PublicKey k;
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i + 1);
    return k;
  }

  // The statement of kClosedStatementHex, built from fields.
  RelayKeyStatement Closed() const {
    RelayKeyStatement s;
    s.serial = 1;
    s.noise_key = SampleNoiseKey();
    s.psk = crypto::SecretBytes::CopyFrom(Bytes(32, 7));
    s.valid_from = kT0;
    EXPECT_TRUE(SignRelayKeyStatement(s, signing_).ok());
    return s;
  }

  // A fresh signed statement for `address`'s relay.
  RelayKeyStatement For(std::uint64_t serial, bool with_psk) {
    RelayKeyStatement s;
    s.serial = serial;
    s.noise_key = crypto::X25519Generate(rng_).public_key;
    if (with_psk) s.psk = crypto::SecretBytes::Random(rng_, kRelayPskBytes);
    s.valid_from = kT0 + serial;
    EXPECT_TRUE(SignRelayKeyStatement(s, signing_).ok());
    return s;
  }

  RelayAddress Address(bool with_psk = false) {
    RelayAddress a = rhizome::testing::SampleRelay(rng_, with_psk);
    a.signing_key = signing_.public_key;
    return a;
  }

  Errc ParseError(ByteSpan bytes) {
    auto r = ParseRelayKeyStatement(bytes);
    EXPECT_FALSE(r.ok());
    return r.ok() ? Errc::kInternal : r.error().code;
  }

  crypto::DeterministicRandom rng_{77};
  crypto::Ed25519KeyPair signing_;
};

// ---- encoding ------------------------------------------------------------

TEST_F(RelayKeyStatementTest, KnownAnswerClosedRelay) {
  EXPECT_EQ(ToHex(signing_.public_key), kSigningPublicHex);
  auto encoded = EncodeRelayKeyStatement(Closed());
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(encoded->size(), kMaxRelayKeyStatementBytes);
  EXPECT_EQ(ToHex(encoded->expose()), kClosedStatementHex);
}

TEST_F(RelayKeyStatementTest, KnownAnswerOpenRelay) {
  RelayKeyStatement s;
  s.serial = 2;
  s.noise_key = SampleNoiseKey();
  s.valid_from = kT0;
  ASSERT_TRUE(SignRelayKeyStatement(s, signing_).ok());
  auto encoded = EncodeRelayKeyStatement(s);
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(encoded->size(), kRelayKeyStatementOpenBytes);
  EXPECT_EQ(ToHex(encoded->expose()), kOpenStatementHex);
}

TEST_F(RelayKeyStatementTest, SignedMessageIsTheEncodingWithoutSignature) {
  RelayKeyStatement s = Closed();
  const Bytes expected = Hex(kClosedStatementHex);
  const Bytes message = RelayKeyStatementMessage(s);
  ASSERT_EQ(message.size(), expected.size() - kSignatureBytes);
  EXPECT_TRUE(std::equal(message.begin(), message.end(), expected.begin()));
}

TEST_F(RelayKeyStatementTest, ParsesTheKnownAnswersAndTheyVerify) {
  for (auto hex : {kClosedStatementHex, kOpenStatementHex}) {
    auto parsed = ParseRelayKeyStatement(Hex(hex));
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->noise_key, SampleNoiseKey());
    EXPECT_EQ(parsed->valid_from, kT0);
    EXPECT_TRUE(VerifyRelayKeyStatement(*parsed, signing_.public_key).ok());
    EXPECT_EQ(ToHex(EncodeRelayKeyStatement(*parsed).value().expose()), hex);
  }
  EXPECT_EQ(ParseRelayKeyStatement(Hex(kClosedStatementHex))->serial, 1u);
  EXPECT_TRUE(ParseRelayKeyStatement(Hex(kOpenStatementHex))->psk.empty());
}

TEST_F(RelayKeyStatementTest, RoundTripsRandomStatements) {
  for (bool with_psk : {false, true}) {
    RelayKeyStatement s = For(9, with_psk);
    auto encoded = EncodeRelayKeyStatement(s).value();
    auto back = ParseRelayKeyStatement(encoded.expose()).value();
    EXPECT_EQ(back.serial, s.serial);
    EXPECT_EQ(back.noise_key, s.noise_key);
    EXPECT_TRUE(back.psk.ConstantTimeEquals(s.psk));
    EXPECT_EQ(back.valid_from, s.valid_from);
    EXPECT_EQ(back.signature, s.signature);
  }
}

TEST_F(RelayKeyStatementTest, CloneIsDeep) {
  RelayKeyStatement s = Closed();
  RelayKeyStatement c = s.Clone();
  s.psk.expose_mut()[0] ^= 1;
  EXPECT_FALSE(c.psk.ConstantTimeEquals(s.psk));
  EXPECT_TRUE(VerifyRelayKeyStatement(c, signing_.public_key).ok());
}

// ---- malformed catalogue -------------------------------------------------

TEST_F(RelayKeyStatementTest, OversizedInputIsRejectedBeforeParsing) {
  Bytes b = Hex(kClosedStatementHex);
  b.push_back(0);
  EXPECT_EQ(ParseError(b), Errc::kLimitExceeded);
  EXPECT_EQ(ParseError(Bytes(4096, 0)), Errc::kLimitExceeded);
}

TEST_F(RelayKeyStatementTest, MalformedStatementsAreRejected) {
  const Bytes closed = Hex(kClosedStatementHex);
  const Bytes open = Hex(kOpenStatementHex);
  struct Case {
    const char* name;
    Bytes bytes;
  };
  std::vector<Case> cases;
  cases.push_back({"empty", {}});
  cases.push_back({"context only", Bytes(closed.begin(), closed.begin() + 30)});
  cases.push_back({"closed truncated by one", Bytes(closed.begin(), closed.end() - 1)});
  cases.push_back({"open truncated by one", Bytes(open.begin(), open.end() - 1)});
  Bytes open_plus_one = open;
  open_plus_one.push_back(0);  // trailing byte after an open statement
  cases.push_back({"open with a trailing byte", open_plus_one});
  Bytes ctx = closed;
  ctx[0] ^= 0x20;  // "Rhizome/..."
  cases.push_back({"wrong context", ctx});
  Bytes v2 = closed;
  v2[12] = '2';  // "rhizome/v2/..."
  cases.push_back({"other context version", v2});
  for (std::uint8_t len : {1, 16, 31, 33, 64, 255}) {
    Bytes b = closed;
    b[kPskLenOffset] = len;
    cases.push_back({"psk length not 0 or 32", b});
  }
  Bytes says_open = closed;  // psk_len 0 but the size of a closed statement
  says_open[kPskLenOffset] = 0;
  cases.push_back({"psk_len 0 in a closed-size statement", says_open});
  Bytes says_closed = open;  // psk_len 32 but the size of an open statement
  says_closed[kPskLenOffset] = 32;
  cases.push_back({"psk_len 32 in an open-size statement", says_closed});
  Bytes serial0 = closed;
  std::fill_n(serial0.begin() + kSerialOffset, 8, 0);
  cases.push_back({"serial 0", serial0});
  Bytes zero_key = closed;
  std::fill_n(zero_key.begin() + kNoiseOffset, 32, 0);
  cases.push_back({"noise key all zeros", zero_key});
  Bytes zero_psk = closed;
  std::fill_n(zero_psk.begin() + kPskLenOffset + 1, 32, 0);
  cases.push_back({"psk all zeros", zero_psk});
  for (const auto& c : cases) {
    EXPECT_EQ(ParseError(c.bytes), Errc::kMalformed) << c.name;
  }
}

TEST_F(RelayKeyStatementTest, FieldRulesAreEnforcedOnEncodeAndSign) {
  RelayKeyStatement s = Closed();
  s.serial = 0;
  EXPECT_EQ(EncodeRelayKeyStatement(s).error().code, Errc::kMalformed);
  EXPECT_EQ(SignRelayKeyStatement(s, signing_).error().code, Errc::kMalformed);
  s = Closed();
  s.psk = crypto::SecretBytes(16);
  EXPECT_EQ(EncodeRelayKeyStatement(s).error().code, Errc::kMalformed);
  s.psk = crypto::SecretBytes(32);  // all zeros: an open relay has no psk
  EXPECT_EQ(ValidateRelayKeyStatement(s).error().code, Errc::kMalformed);
}

TEST_F(RelayKeyStatementTest, SigningNeedsTheSecretKey) {
  RelayKeyStatement s = Closed();
  crypto::Ed25519KeyPair public_only;
  public_only.public_key = signing_.public_key;
  EXPECT_EQ(SignRelayKeyStatement(s, public_only).error().code, Errc::kInvalidArgument);
}

// ---- authentication ------------------------------------------------------

TEST_F(RelayKeyStatementTest, FlippingAnyBitIsRejected) {
  for (auto hex : {kClosedStatementHex, kOpenStatementHex}) {
    const Bytes good = Hex(hex);
    for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
      Bytes bad = good;
      bad[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      auto parsed = ParseRelayKeyStatement(bad);
      if (!parsed) continue;  // rejected by the parser
      EXPECT_FALSE(VerifyRelayKeyStatement(*parsed, signing_.public_key).ok()) << "bit " << bit;
    }
  }
}

TEST_F(RelayKeyStatementTest, ChangingAnyFieldBreaksTheSignature) {
  auto check = [&](auto mutate) {
    RelayKeyStatement s = Closed();
    mutate(s);
    EXPECT_EQ(VerifyRelayKeyStatement(s, signing_.public_key).error().code,
              Errc::kAuthenticationFailed);
  };
  check([](RelayKeyStatement& s) { s.serial += 1; });
  check([](RelayKeyStatement& s) { s.noise_key[31] ^= 1; });
  check([](RelayKeyStatement& s) { s.psk.expose_mut()[0] ^= 1; });
  check([](RelayKeyStatement& s) { s.psk = crypto::SecretBytes(); });  // "now open"
  check([](RelayKeyStatement& s) { s.valid_from += 1; });
  check([](RelayKeyStatement& s) { s.signature[0] ^= 1; });
}

TEST_F(RelayKeyStatementTest, WrongSigningKeyIsRejected) {
  auto other = crypto::Ed25519Generate(rng_);
  EXPECT_EQ(VerifyRelayKeyStatement(Closed(), other.public_key).error().code,
            Errc::kAuthenticationFailed);
  EXPECT_EQ(VerifyRelayKeyStatement(Closed(), Bytes(31, 1)).error().code, Errc::kInvalidArgument);
}

TEST_F(RelayKeyStatementTest, StatementForOtherPurposesDoesNotVerify) {
  // Domain separation: a signature by the same key over the same fields
  // without the context must not pass as a statement.
  RelayKeyStatement s = Closed();
  Bytes message = RelayKeyStatementMessage(s);
  Bytes without_context(message.begin() + 30, message.end());
  s.signature = crypto::Ed25519Sign(signing_.secret_key, without_context).value();
  EXPECT_FALSE(VerifyRelayKeyStatement(s, signing_.public_key).ok());
}

// ---- ApplyKeyStatement ---------------------------------------------------

TEST_F(RelayKeyStatementTest, ApplyReplacesKeyAndPskOnly) {
  RelayAddress a = Address(/*with_psk=*/false);
  a.versions = {1};
  RelayKeyStatement s = For(1, /*with_psk=*/true);
  auto b = ApplyKeyStatement(a, s, 0);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->noise_key, s.noise_key);
  EXPECT_TRUE(b->psk.ConstantTimeEquals(s.psk));
  EXPECT_EQ(b->signing_key, a.signing_key);
  EXPECT_EQ(b->host, a.host);
  EXPECT_EQ(b->port, a.port);
  EXPECT_EQ(b->versions, a.versions);
  EXPECT_TRUE(FormatRelayAddress(*b).ok());
}

TEST_F(RelayKeyStatementTest, ApplyCanOpenAClosedRelay) {
  RelayAddress a = Address(/*with_psk=*/true);
  auto b = ApplyKeyStatement(a, For(3, /*with_psk=*/false), 2);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->psk.empty());
}

TEST_F(RelayKeyStatementTest, RollbackToOlderOrEqualSerialIsIgnored) {
  RelayAddress a = Address();
  RelayKeyStatement s5 = For(5, false);
  EXPECT_EQ(ApplyKeyStatement(a, s5, 5).error().code, Errc::kAlreadyExists);
  EXPECT_EQ(ApplyKeyStatement(a, s5, 6).error().code, Errc::kAlreadyExists);
  EXPECT_EQ(ApplyKeyStatement(a, s5, UINT64_MAX).error().code, Errc::kAlreadyExists);
  EXPECT_TRUE(ApplyKeyStatement(a, s5, 4).ok());
}

TEST_F(RelayKeyStatementTest, ForgedStatementIsRejectedBeforeItsSerialIsLookedAt) {
  RelayAddress a = Address();
  auto forger = crypto::Ed25519Generate(rng_);
  RelayKeyStatement s;
  s.serial = 100;
  s.noise_key = crypto::X25519Generate(rng_).public_key;
  s.valid_from = kT0;
  ASSERT_TRUE(SignRelayKeyStatement(s, forger).ok());
  EXPECT_EQ(ApplyKeyStatement(a, s, 0).error().code, Errc::kAuthenticationFailed);
  EXPECT_EQ(ApplyKeyStatement(a, s, 1000).error().code, Errc::kAuthenticationFailed);
}

TEST_F(RelayKeyStatementTest, AnotherRelaysStatementIsRejected) {
  RelayAddress a = Address();
  RelayAddress other = rhizome::testing::SampleRelay(rng_);  // another signing key
  RelayKeyStatement s = For(1, false);  // signed by a's relay
  EXPECT_EQ(ApplyKeyStatement(other, s, 0).error().code, Errc::kAuthenticationFailed);
  EXPECT_TRUE(ApplyKeyStatement(a, s, 0).ok());
}

TEST_F(RelayKeyStatementTest, ApplyRejectsAnInvalidStoredAddress) {
  RelayAddress a = Address();
  a.port = 0;
  EXPECT_EQ(ApplyKeyStatement(a, For(1, false), 0).error().code, Errc::kInvalidArgument);
}

TEST_F(RelayKeyStatementTest, ApplyRejectsMalformedFields) {
  RelayAddress a = Address();
  RelayKeyStatement s = For(1, false);
  s.serial = 0;
  EXPECT_EQ(ApplyKeyStatement(a, s, 0).error().code, Errc::kMalformed);
}

TEST_F(RelayKeyStatementTest, StatementSurvivesTheWireAndStillApplies) {
  RelayAddress a = Address(true);
  RelayKeyStatement s = For(2, true);
  TransportMessage m = RelayReply{std::nullopt, s.Clone()};
  auto bytes = SerializeTransportMessage(m);
  ASSERT_TRUE(bytes.ok());
  auto back = ParseTransportMessage(*bytes);
  ASSERT_TRUE(back.ok());
  auto* reply = std::get_if<RelayReply>(&*back);
  ASSERT_NE(reply, nullptr);
  EXPECT_FALSE(reply->corr_id.has_value());
  auto* got = std::get_if<RelayKeyStatement>(&reply->body);
  ASSERT_NE(got, nullptr);
  auto b = ApplyKeyStatement(a, *got, 1);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->noise_key, s.noise_key);
  EXPECT_TRUE(b->psk.ConstantTimeEquals(s.psk));
}

TEST_F(RelayKeyStatementTest, ReplyValidationAppliesTheFieldRules) {
  RelayKeyStatement s = For(2, false);
  s.serial = 0;
  EXPECT_FALSE(ValidateRelayReply(RelayReply{std::nullopt, std::move(s)}).ok());
  Id corr{};
  corr[0] = 1;
  EXPECT_FALSE(ValidateRelayReply(RelayReply{corr, For(2, false)}).ok());  // pushed only
  EXPECT_TRUE(ValidateRelayReply(RelayReply{std::nullopt, For(2, false)}).ok());
}

}  // namespace
}  // namespace rhizome::protocol
