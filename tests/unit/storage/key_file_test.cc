// The profile key file: format, round trip and the malformed-input catalogue.
#include "key_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "storage_test_util.h"

namespace rhizome::storage {
namespace {

using testing::FastParams;

constexpr std::string_view kPassphrase = "correct horse battery staple";

class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init().ok());
    crypto::DeterministicRandom rng(7);
    key_ = crypto::SecretBytes::Random(rng, 32);
    auto file = WrapDatabaseKey(key_, AsBytes(kPassphrase), FastParams(), rng);
    ASSERT_TRUE(file.ok());
    bytes_ = SerializeKeyFile(*file);
  }

  crypto::SecretBytes key_;
  Bytes bytes_;
};

// Recomputes the checksum, as someone editing the file on purpose would.
Bytes Reseal(Bytes b) {
  auto sum = crypto::Blake2b256(ByteSpan(b).first(kKeyFileChecksumOffset));
  std::copy(sum.begin(), sum.end(), b.begin() + kKeyFileChecksumOffset);
  return b;
}

void PutU64(Bytes& b, std::size_t offset, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    b[offset + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * (7 - i)));
}

TEST_F(KeyFileTest, LayoutMatchesTheDocumentedFormat) {
  ASSERT_EQ(bytes_.size(), 146u);
  EXPECT_EQ(std::memcmp(bytes_.data(), "RHZMKEY\0", 8), 0);
  EXPECT_EQ(bytes_[8], 0x00);
  EXPECT_EQ(bytes_[9], 0x01);
  // ops_limit = 1, mem_limit = 8192, big-endian.
  EXPECT_EQ(ToHex(ByteSpan(bytes_).subspan(10, 16)), "00000000000000010000000000002000");
  auto sum = crypto::Blake2b256(ByteSpan(bytes_).first(114));
  EXPECT_TRUE(ConstantTimeEqual(sum, ByteSpan(bytes_).subspan(114)));
}

TEST_F(KeyFileTest, SerializeParseRoundTrip) {
  auto parsed = ParseKeyFile(bytes_);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->params.ops_limit, 1u);
  EXPECT_EQ(parsed->params.mem_limit, 8192u);
  EXPECT_EQ(SerializeKeyFile(*parsed), bytes_);
}

TEST_F(KeyFileTest, UnwrapWithThePassphraseGivesTheKey) {
  auto parsed = ParseKeyFile(bytes_);
  ASSERT_TRUE(parsed.ok());
  auto key = UnwrapDatabaseKey(*parsed, AsBytes(kPassphrase));
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_TRUE(key->ConstantTimeEquals(key_));
}

TEST_F(KeyFileTest, WrongPassphraseFailsTheUnwrap) {
  auto parsed = ParseKeyFile(bytes_);
  ASSERT_TRUE(parsed.ok());
  auto key = UnwrapDatabaseKey(*parsed, AsBytes("correct horse battery stapl"));
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().code, Errc::kWrongPassphrase);
  EXPECT_STREQ(key.error().message, "wrong passphrase or damaged profile");
}

TEST_F(KeyFileTest, FreshWrapsUseFreshSaltAndNonce) {
  crypto::DeterministicRandom rng(8);
  auto a = WrapDatabaseKey(key_, AsBytes(kPassphrase), FastParams(), rng);
  auto b = WrapDatabaseKey(key_, AsBytes(kPassphrase), FastParams(), rng);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->salt, b->salt);
  EXPECT_NE(a->nonce, b->nonce);
  EXPECT_NE(a->wrapped_key, b->wrapped_key);
}

TEST_F(KeyFileTest, WrapRejectsBadArguments) {
  crypto::DeterministicRandom rng(9);
  auto short_key = crypto::SecretBytes::Random(rng, 16);
  EXPECT_ERRC(WrapDatabaseKey(short_key, AsBytes(kPassphrase), FastParams(), rng),
              Errc::kInvalidArgument);
  EXPECT_ERRC(WrapDatabaseKey(key_, AsBytes(kPassphrase), {0, 8192}, rng), Errc::kInvalidArgument);
}

TEST_F(KeyFileTest, EveryTruncationIsRejected) {
  for (std::size_t len = 0; len < bytes_.size(); ++len) {
    auto parsed = ParseKeyFile(ByteSpan(bytes_).first(len));
    ASSERT_FALSE(parsed.ok()) << "length " << len;
    EXPECT_EQ(parsed.error().code, Errc::kCorrupt) << "length " << len;
  }
}

TEST_F(KeyFileTest, TrailingBytesAreRejected) {
  Bytes longer = bytes_;
  longer.push_back(0);
  EXPECT_ERRC(ParseKeyFile(longer), Errc::kCorrupt);
}

TEST_F(KeyFileTest, OversizedFileIsRejected) {
  for (std::size_t size : {kMaxKeyFileBytes, kMaxKeyFileBytes + 1, std::size_t{1} << 20}) {
    Bytes big = bytes_;
    big.resize(size, 0x41);
    auto parsed = ParseKeyFile(big);
    ASSERT_FALSE(parsed.ok()) << size;
    EXPECT_EQ(parsed.error().code, Errc::kCorrupt) << size;
  }
  Bytes big = bytes_;
  big.resize(kMaxKeyFileBytes + 1);
  EXPECT_STREQ(ParseKeyFile(big).error().message, "profile key file is too large");
}

TEST_F(KeyFileTest, BadMagicIsRejected) {
  for (std::size_t i = 0; i < kKeyFileMagic.size(); ++i) {
    Bytes b = bytes_;
    b[i] ^= 0x20;
    auto parsed = ParseKeyFile(Reseal(b));
    ASSERT_FALSE(parsed.ok()) << i;
    EXPECT_EQ(parsed.error().code, Errc::kCorrupt);
    EXPECT_STREQ(parsed.error().message, "not a profile key file (bad magic)");
  }
}

TEST_F(KeyFileTest, UnknownVersionIsRejected) {
  for (std::uint16_t version : {2, 3, 0x0100, 0xffff}) {
    Bytes b = bytes_;
    b[8] = static_cast<std::uint8_t>(version >> 8);
    b[9] = static_cast<std::uint8_t>(version);
    EXPECT_ERRC(ParseKeyFile(Reseal(b)), Errc::kUnsupported);
  }
  Bytes zero = bytes_;
  zero[9] = 0;
  EXPECT_ERRC(ParseKeyFile(Reseal(zero)), Errc::kCorrupt);
}

// SECURITY: a hostile key file must not make us run Argon2id with, say, 1 TiB
// of memory. The parser is pure (it never runs Argon2id) and returns no
// KeyFile for such parameters, so nothing downstream can run them.
TEST_F(KeyFileTest, OutOfRangeArgon2ParametersAreRejectedBeforeAnyArgon2) {
  struct Case {
    std::uint64_t ops, mem;
  };
  const Case cases[] = {
      {0, 8192},  // below libsodium's minimum passes
      {crypto::kArgon2MaxOpsLimit + 1, 8192},
      {~0ull, 8192},
      {1, 0},
      {1, 8191},  // below libsodium's minimum memory
      {1, crypto::kArgon2MaxMemLimit + 1},
      {1, 1ull << 40},  // 1 TiB
      {1, ~0ull},
      {~0ull, ~0ull},
  };
  for (const auto& c : cases) {
    Bytes b = bytes_;
    PutU64(b, kKeyFileOpsOffset, c.ops);
    PutU64(b, kKeyFileMemOffset, c.mem);
    auto parsed = ParseKeyFile(Reseal(b));
    ASSERT_FALSE(parsed.ok()) << c.ops << " " << c.mem;
    EXPECT_EQ(parsed.error().code, Errc::kCorrupt);
    EXPECT_STREQ(parsed.error().message, "profile key file has out-of-range Argon2id parameters");
  }
}

TEST_F(KeyFileTest, UnwrapRevalidatesParametersBeforeArgon2) {
  auto parsed = ParseKeyFile(bytes_);
  ASSERT_TRUE(parsed.ok());
  KeyFile hostile = *parsed;
  hostile.params.mem_limit = 1ull << 40;  // would need 1 TiB if it ran
  EXPECT_ERRC(UnwrapDatabaseKey(hostile, AsBytes(kPassphrase)), Errc::kCorrupt);
}

TEST_F(KeyFileTest, AnyFlippedBitIsRejectedByTheParser) {
  for (std::size_t bit = 0; bit < bytes_.size() * 8; ++bit) {
    Bytes b = bytes_;
    b[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    auto parsed = ParseKeyFile(b);
    ASSERT_FALSE(parsed.ok()) << "bit " << bit;
    EXPECT_TRUE(parsed.error().code == Errc::kCorrupt || parsed.error().code == Errc::kUnsupported)
        << "bit " << bit;
  }
}

// Someone who edits the file on purpose can fix the checksum; the AEAD, with
// the header as associated data, still rejects every change.
TEST_F(KeyFileTest, TamperingWithAFixedChecksumFailsTheUnwrap) {
  int unwraps = 0;
  for (std::size_t bit = kKeyFileOpsOffset * 8; bit < kKeyFileChecksumOffset * 8; ++bit) {
    Bytes b = bytes_;
    b[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    auto parsed = ParseKeyFile(Reseal(b));
    if (!parsed.ok()) {
      // Only parameter bits may fail parsing, and only as out of range.
      EXPECT_LT(bit / 8, kKeyFileSaltOffset) << "bit " << bit;
      EXPECT_EQ(parsed.error().code, Errc::kCorrupt);
      continue;
    }
    // Parameters still in range but costly (up to 1 GiB) are not run here:
    // the cheaper ones below prove the parameters are bound by the AEAD.
    if (parsed->params.mem_limit > (64u << 20)) continue;
    auto key = UnwrapDatabaseKey(*parsed, AsBytes(kPassphrase));
    ASSERT_FALSE(key.ok()) << "bit " << bit;
    EXPECT_EQ(key.error().code, Errc::kWrongPassphrase) << "bit " << bit;
    ++unwraps;
  }
  // Salt, nonce, ciphertext and tag bits all reach the AEAD, and so do some
  // parameter bits.
  EXPECT_GT(unwraps, static_cast<int>((kKeyFileChecksumOffset - kKeyFileSaltOffset) * 8));
}

TEST_F(KeyFileTest, AssociatedDataIsTheWholeFileHeader) {
  // Magic, version, parameters, salt and nonce: bytes 0..65 exactly.
  auto parsed = ParseKeyFile(bytes_);
  ASSERT_TRUE(parsed.ok());
  auto header = KeyFileHeader(*parsed);
  EXPECT_TRUE(ConstantTimeEqual(header, ByteSpan(bytes_).first(kKeyFileHeaderBytes)));
}

}  // namespace
}  // namespace rhizome::storage
