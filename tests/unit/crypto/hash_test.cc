// Hashes, MACs and HKDF: RFC 4231, RFC 5869, RFC 7693 known answers, the
// HMAC-BLAKE2b / Noise HKDF vectors and Signal's chain-KDF vector.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/secret.h"
#include "test_support.h"

namespace rhizome::crypto {
namespace {

using nlohmann::json;
using rhizome::testing::Hex;
using rhizome::testing::ReadFileOrDie;
using rhizome::testing::VectorPath;

json LoadVectors(const char* file) { return json::parse(ReadFileOrDie(VectorPath(file))); }

TEST(Sha2, KnownAnswersForAbc) {
  // FIPS 180-2 examples ("abc").
  EXPECT_EQ(ToHex(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ToHex(Sha512(AsBytes("abc"))),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c2"
            "3a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

TEST(Blake2b, Rfc7693KnownAnswerForAbc) {
  // RFC 7693 Appendix A: BLAKE2b-512("abc").
  EXPECT_EQ(ToHex(Blake2b512(AsBytes("abc"))),
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5d"
            "e4533cc9518d38aa8dbf1925ab92386edd4009923");
  // BLAKE2b-256 is its own parameter set, not a truncation of BLAKE2b-512
  // (value cross-checked with Python's hashlib.blake2b(digest_size=32)).
  EXPECT_EQ(ToHex(Blake2b256(AsBytes("abc"))),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
  EXPECT_EQ(ToHex(Blake2b256({})),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
}

TEST(Blake2b, IncrementalEqualsOneShotAndCopiedStateForks) {
  Bytes data(300);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 7);
  Blake2b h(kBlake2b512Bytes);
  h.Update(ByteSpan(data).first(100));
  Blake2b fork = h;  // copy of the state after the common prefix
  h.Update(ByteSpan(data).subspan(100));
  ByteArray<64> out{};
  h.Final(out);
  EXPECT_EQ(out, Blake2b512(data));

  fork.Update(ByteSpan(data).subspan(100, 50));
  ByteArray<64> forked{};
  fork.Final(forked);
  EXPECT_EQ(forked, Blake2b512(ByteSpan(data).first(150)));

  Blake2b h32(kBlake2b256Bytes);
  EXPECT_EQ(h32.out_len(), 32u);
  h32.Update(AsBytes("a")).Update(AsBytes("bc"));
  ByteArray<32> out32{};
  h32.Final(out32);
  EXPECT_EQ(out32, Blake2b256(AsBytes("abc")));
}

TEST(Blake2bKeyed, KnownAnswerAndSizeLimits) {
  Bytes key(32);
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
  ByteArray<32> out{};
  ASSERT_TRUE(Blake2bKeyed(key, AsBytes("abc"), out).ok());
  // Python: hashlib.blake2b(b"abc", key=bytes(range(32)), digest_size=32).
  EXPECT_EQ(ToHex(out), "d63a32d3e44738d7907f964316c241adaba0abfeabc32349677578a15a203f7f");

  Bytes small_out(15), big_out(65), ok_out(16);
  EXPECT_EQ(Blake2bKeyed(key, {}, small_out).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(Blake2bKeyed(key, {}, big_out).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(Blake2bKeyed(Bytes(15), {}, ok_out).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(Blake2bKeyed(Bytes(65), {}, ok_out).error().code, Errc::kInvalidArgument);
  EXPECT_TRUE(Blake2bKeyed(Bytes(16), {}, ok_out).ok());
  Bytes out64(64);
  EXPECT_TRUE(Blake2bKeyed(Bytes(64), {}, out64).ok());
}

TEST(HmacSha256, Rfc4231Cases1And2) {
  ByteArray<32> out{};
  // RFC 4231 §4.2, Test Case 1.
  HmacSha256(Bytes(20, 0x0b), AsBytes("Hi There"), out);
  EXPECT_EQ(ToHex(out), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // RFC 4231 §4.3, Test Case 2.
  HmacSha256(AsBytes("Jefe"), AsBytes("what do ya want for nothing?"), out);
  EXPECT_EQ(ToHex(out), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256Key, Rfc4231VectorsAndReuseMatchTheOneShotHmac) {
  ByteArray<32> out{};
  const HmacSha256Key case1(Bytes(20, 0x0b));
  case1.Mac(AsBytes("Hi There"), out);
  EXPECT_EQ(ToHex(out), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  const HmacSha256Key case2(AsBytes("Jefe"));
  case2.Mac(AsBytes("what do ya want for nothing?"), out);
  EXPECT_EQ(ToHex(out), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // RFC 4231 §4.7, Test Case 6: a 131-byte key (longer than the block).
  const HmacSha256Key case6(Bytes(131, 0xaa));
  case6.Mac(AsBytes("Test Using Larger Than Block-Size Key - Hash Key First"), out);
  EXPECT_EQ(ToHex(out), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  // One key, several messages: each equals the one-shot HMAC, in any order.
  const Bytes key(32, 0x42);
  const HmacSha256Key reused(key);
  for (std::uint8_t b : {0x02, 0x01, 0x02}) {
    ByteArray<32> one_shot{};
    HmacSha256(key, Bytes(1, b), one_shot);
    reused.Mac(Bytes(1, b), out);
    EXPECT_EQ(out, one_shot);
  }
}

TEST(HmacSha512, Rfc4231Cases1And2) {
  ByteArray<64> out{};
  // RFC 4231 §4.2, Test Case 1.
  HmacSha512(Bytes(20, 0x0b), AsBytes("Hi There"), out);
  EXPECT_EQ(ToHex(out),
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274"
            "eaea3f4e4be9d914eeb61f1702e696c203a126854");
  // RFC 4231 §4.3, Test Case 2.
  HmacSha512(AsBytes("Jefe"), AsBytes("what do ya want for nothing?"), out);
  EXPECT_EQ(ToHex(out),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f6"
            "5f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");
}

TEST(HmacBlake2b512, AllVectorCasesIncludingLongKeys) {
  const json v = LoadVectors("hmac_hkdf_kat.json");
  const auto& cases = v.at("hmac_blake2b_512").at("cases");
  ASSERT_GE(cases.size(), 6u);
  bool saw_empty_key = false, saw_key_above_block = false, saw_key_exactly_block = false;
  for (const auto& c : cases) {
    const Bytes key = Hex(c.at("key").get<std::string>());
    const Bytes data = Hex(c.at("data").get<std::string>());
    SCOPED_TRACE("key of " + std::to_string(key.size()) + " bytes");
    saw_empty_key |= key.empty();
    saw_key_above_block |= key.size() > kBlake2bBlockBytes;
    saw_key_exactly_block |= key.size() == kBlake2bBlockBytes;
    ByteArray<64> out{};
    HmacBlake2b512(key, data, out);
    EXPECT_EQ(ToHex(out), c.at("hmac_blake2b_512").get<std::string>());
  }
  EXPECT_TRUE(saw_empty_key);
  EXPECT_TRUE(saw_key_above_block);
  EXPECT_TRUE(saw_key_exactly_block);
}

TEST(HmacBlake2b512, IsNotKeyedBlake2b) {
  // SECURITY: BLAKE2b's keyed mode is a different function (DESIGN §5).
  const Bytes key(32, 0x42);
  ByteArray<64> hmac{};
  HmacBlake2b512(key, AsBytes("abc"), hmac);
  ByteArray<64> keyed{};
  ASSERT_TRUE(Blake2bKeyed(key, AsBytes("abc"), keyed).ok());
  EXPECT_NE(hmac, keyed);
}

TEST(HmacBlake2b512, NoiseHkdfVector) {
  // Noise spec §4.3 HKDF(chaining_key, input_key_material, 3) with HMAC-BLAKE2b:
  // temp = HMAC(ck, ikm); out1 = HMAC(temp, 0x01); out_i = HMAC(temp, out_{i-1} || i).
  const json v = LoadVectors("hmac_hkdf_kat.json").at("noise_hkdf_blake2b");
  const Bytes ck = Hex(v.at("ck").get<std::string>());
  const Bytes ikm = Hex(v.at("ikm").get<std::string>());
  ByteArray<64> temp{};
  HmacBlake2b512(ck, ikm, temp);
  ByteArray<64> out1{}, out2{}, out3{};
  HmacBlake2b512(temp, Bytes{0x01}, out1);
  Bytes in2(out1.begin(), out1.end());
  in2.push_back(0x02);
  HmacBlake2b512(temp, in2, out2);
  Bytes in3(out2.begin(), out2.end());
  in3.push_back(0x03);
  HmacBlake2b512(temp, in3, out3);
  EXPECT_EQ(ToHex(out1), v.at("out1").get<std::string>());
  EXPECT_EQ(ToHex(out2), v.at("out2").get<std::string>());
  EXPECT_EQ(ToHex(out3), v.at("out3").get<std::string>());
}

TEST(HkdfSha256, Rfc5869Cases1To3) {
  // RFC 5869 Appendix A.1-A.3, as copied into hmac_hkdf_kat.json.
  const json v = LoadVectors("hmac_hkdf_kat.json");
  const auto& cases = v.at("rfc5869_hkdf_sha256").at("cases");
  ASSERT_EQ(cases.size(), 3u);
  for (const auto& c : cases) {
    const Bytes ikm = Hex(c.at("ikm").get<std::string>());
    const Bytes salt = Hex(c.at("salt").get<std::string>());
    const Bytes info = Hex(c.at("info").get<std::string>());
    Bytes okm(c.at("L").get<std::size_t>());
    SCOPED_TRACE(c.at("okm").get<std::string>());
    ASSERT_TRUE(HkdfSha256(salt, ikm, info, okm).ok());
    EXPECT_EQ(ToHex(okm), c.at("okm").get<std::string>());
  }
}

TEST(HkdfSha256, Rfc5869Case1TypedInFromTheRfc) {
  // RFC 5869 Appendix A.1, independent of the JSON file.
  Bytes okm(42);
  ASSERT_TRUE(HkdfSha256(Hex("000102030405060708090a0b0c"), Bytes(22, 0x0b),
                         Hex("f0f1f2f3f4f5f6f7f8f9"), okm)
                  .ok());
  EXPECT_EQ(ToHex(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(HkdfSha256, EmptySaltMeansThirtyTwoZeroBytes) {
  const Bytes ikm(22, 0x0b);
  Bytes a(42), b(42);
  ASSERT_TRUE(HkdfSha256({}, ikm, {}, a).ok());
  ASSERT_TRUE(HkdfSha256(Bytes(32, 0), ikm, {}, b).ok());
  EXPECT_EQ(a, b);
  // RFC 5869 Appendix A.3 (salt not provided).
  EXPECT_EQ(ToHex(a),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(HkdfSha256, OutputLengthLimits) {
  const Bytes ikm(32, 1);
  Bytes none;
  EXPECT_EQ(HkdfSha256({}, ikm, {}, none).error().code, Errc::kInvalidArgument);
  Bytes too_long(kHkdfSha256MaxOutput + 1);
  EXPECT_EQ(HkdfSha256({}, ikm, {}, too_long).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(kHkdfSha256MaxOutput, 255u * 32u);

  Bytes max(kHkdfSha256MaxOutput);
  ASSERT_TRUE(HkdfSha256({}, ikm, {}, max).ok());
  Bytes one(1);
  ASSERT_TRUE(HkdfSha256({}, ikm, {}, one).ok());
  // Shorter outputs are prefixes of longer ones (same T(1), T(2), ...).
  EXPECT_EQ(one[0], max[0]);
  Bytes mid(100);
  ASSERT_TRUE(HkdfSha256({}, ikm, {}, mid).ok());
  EXPECT_TRUE(std::equal(mid.begin(), mid.end(), max.begin()));
  // The last block (counter 255) is not a repeat of an earlier one.
  EXPECT_FALSE(std::equal(max.end() - 32, max.end(), max.end() - 64));
}

TEST(HkdfSha256, InfoAndSaltSeparateOutputs) {
  const Bytes ikm(32, 9);
  Bytes a(32), b(32), c(32);
  ASSERT_TRUE(HkdfSha256({}, ikm, AsBytes("rhizome/v1/a"), a).ok());
  ASSERT_TRUE(HkdfSha256({}, ikm, AsBytes("rhizome/v1/b"), b).ok());
  ASSERT_TRUE(HkdfSha256(Bytes(32, 1), ikm, AsBytes("rhizome/v1/a"), c).ok());
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
}

TEST(SignalKdfChain, MessageKeySeedNextChainKeyAndExpansion) {
  // signal_kdf_chain_kat.json (libsignal-protocol-c test_ratchet.c values):
  // mk_seed = HMAC-SHA256(ck, 0x01), next_ck = HMAC-SHA256(ck, 0x02),
  // cipher_key || mac_key || iv = HKDF(32 zero bytes, mk_seed, "WhisperMessageKeys", 80).
  const json v = LoadVectors("signal_kdf_chain_kat.json").at("KDF_CK");
  const Bytes ck = Hex(v.at("ck").get<std::string>());
  ByteArray<32> mk_seed{}, next_ck{};
  HmacSha256(ck, Bytes{0x01}, mk_seed);
  HmacSha256(ck, Bytes{0x02}, next_ck);
  EXPECT_EQ(ToHex(mk_seed), v.at("mk_seed").get<std::string>());
  EXPECT_EQ(ToHex(next_ck), v.at("next_ck").get<std::string>());

  SecretBytes keys(80);
  ASSERT_TRUE(HkdfSha256(Bytes(32, 0), mk_seed, AsBytes("WhisperMessageKeys"),
                         keys.expose_mut())
                  .ok());
  EXPECT_EQ(ToHex(keys.expose().first(32)), v.at("cipher_key").get<std::string>());
  EXPECT_EQ(ToHex(keys.expose().subspan(32, 32)), v.at("mac_key").get<std::string>());
  EXPECT_EQ(ToHex(keys.expose().subspan(64, 16)), v.at("iv").get<std::string>());
}

}  // namespace
}  // namespace rhizome::crypto
