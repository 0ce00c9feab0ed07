#include "rhizome/protocol/identity.h"

#include <gtest/gtest.h>

#include <regex>

#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "test_support.h"

namespace rhizome::protocol {
namespace {

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(crypto::Init()); }
  crypto::DeterministicRandom rng_{42};
};

TEST_F(IdentityTest, GeneratedCertificateVerifies) {
  auto id = GenerateIdentity("Amina", rng_);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->display_name, "Amina");
  EXPECT_TRUE(VerifyDeviceCertificate(id->signing.public_key, id->noise.public_key,
                                      id->certificate));
}

TEST_F(IdentityTest, CertificateRejectsEveryFlippedBit) {
  auto id = GenerateIdentity("Amina", rng_);
  ASSERT_TRUE(id);
  for (std::size_t bit = 0; bit < 64 * 8; ++bit) {
    auto cert = id->certificate;
    cert[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    EXPECT_FALSE(VerifyDeviceCertificate(id->signing.public_key, id->noise.public_key, cert))
        << "bit " << bit;
  }
  for (std::size_t bit = 0; bit < 32 * 8; ++bit) {
    auto noise = id->noise.public_key;
    noise[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    EXPECT_FALSE(VerifyDeviceCertificate(id->signing.public_key, noise, id->certificate))
        << "bit " << bit;
  }
}

TEST_F(IdentityTest, CertificateOfAnotherIdentityIsRejected) {
  auto a = GenerateIdentity("A", rng_);
  auto b = GenerateIdentity("B", rng_);
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(VerifyDeviceCertificate(a->signing.public_key, b->noise.public_key,
                                       b->certificate));
}

TEST_F(IdentityTest, CertificateMessageIsTheDocumentedBytes) {
  ByteArray<32> noise{};
  noise.fill(0xAB);
  Bytes expected(AsBytes("rhizome/v1/device-cert").begin(), AsBytes("rhizome/v1/device-cert").end());
  expected.push_back(0x00);
  expected.push_back(0x01);
  expected.insert(expected.end(), noise.begin(), noise.end());
  EXPECT_EQ(DeviceCertificateMessage(noise), expected);
}

TEST_F(IdentityTest, DisplayNameRules) {
  EXPECT_TRUE(ValidateDisplayName("Amina Diallo"));
  EXPECT_TRUE(ValidateDisplayName("Nguyễn Thị Hoa"));
  EXPECT_TRUE(ValidateDisplayName(std::string(64, 'a')));
  EXPECT_FALSE(ValidateDisplayName(""));
  EXPECT_FALSE(ValidateDisplayName(std::string(65, 'a')));
  EXPECT_FALSE(ValidateDisplayName("tab\there"));
  EXPECT_FALSE(ValidateDisplayName("new\nline"));
  EXPECT_FALSE(ValidateDisplayName(std::string("nul\0x", 5)));
  EXPECT_FALSE(ValidateDisplayName("\xC0\x80"));          // overlong NUL
  EXPECT_FALSE(ValidateDisplayName("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(ValidateDisplayName("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(ValidateDisplayName("\xE2\x82"));          // truncated
  EXPECT_FALSE(ValidateDisplayName("\xFF"));
  EXPECT_FALSE(GenerateIdentity("", rng_));
}

// A name that looks like another must not pass: the inviter's side names a new
// contact after its card, and commands act on names.
TEST_F(IdentityTest, LookalikeNamesWithInvisibleOrBidiCharactersAreRefused) {
  const char* const refused[] = {
      "Alice\u200B",              // zero-width space
      "Al\u200Dice",              // zero-width joiner
      "Alice\u200E",              // left-to-right mark
      "\u202Eecila",              // right-to-left override
      "Alice\u2066x\u2069",      // isolate
      "Alice\u2060",              // word joiner
      "Alice\uFEFF",              // zero-width no-break space
      "Alice\u00AD",              // soft hyphen
      "Alice\uFE0F",              // variation selector
      "Alice\U000E0041",          // tag character
      "Alice\u3164",              // Hangul filler
      "Alice\xC2\x85",           // C1 control (NEL)
      "Alice\x7F",                // DEL
      " Alice",                   // leading space
      "Alice ",                   // trailing space
  };
  for (const char* name : refused) {
    EXPECT_FALSE(ValidateDisplayName(name)) << ToHex(AsBytes(name));
  }
  EXPECT_TRUE(ValidateDisplayName("Alice Smith"));
  EXPECT_TRUE(ValidateDisplayName("\u0645\u0631\u064A\u0645"));  // Arabic script, no marks
  EXPECT_TRUE(ValidateDisplayName("Zo\u00EB \U0001F33F"));        // accents and emoji
}

TEST_F(IdentityTest, FingerprintIsTenGroupsOfHexAndDependsOnTheKey) {
  auto a = GenerateIdentity("A", rng_);
  auto b = GenerateIdentity("B", rng_);
  ASSERT_TRUE(a && b);
  std::string fa = IdentityFingerprint(a->signing.public_key);
  EXPECT_TRUE(std::regex_match(fa, std::regex("([0-9a-f]{4} ){9}[0-9a-f]{4}"))) << fa;
  EXPECT_NE(fa, IdentityFingerprint(b->signing.public_key));
}

TEST_F(IdentityTest, FingerprintKnownAnswer) {
  // BLAKE2b-256("rhizome/v1/fingerprint" || 32 x 0x00)[0:20], computed independently with
  // python3: hashlib.blake2b(b"rhizome/v1/fingerprint" + bytes(32), digest_size=32).
  ByteArray<32> zero{};
  EXPECT_EQ(IdentityFingerprint(zero), "668f 02b6 f4e9 14c2 5b2f 3ef0 46ea 6b96 5f75 52e3");
}

}  // namespace
}  // namespace rhizome::protocol
