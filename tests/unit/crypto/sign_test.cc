// Ed25519: RFC 8032 known answers, tampering, strict public keys.
#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <string>
#include <vector>

#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/sign.h"
#include "test_support.h"

namespace rhizome::crypto {
namespace {

using rhizome::testing::Hex;

struct Ed25519Vector {
  const char* name;
  const char* secret_key;  // the 32-byte seed
  const char* public_key;
  std::string message;     // hex
  const char* signature;
};

// The 1023-byte message of RFC 8032 §7.1 "TEST 1024".
const char kTest1024Message[] =
    "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1"
    "e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
    "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a"
    "7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
    "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc10"
    "3b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
    "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d"
    "502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
    "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089b"
    "eccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
    "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969b"
    "e3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
    "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988d"
    "cda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
    "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7"
    "984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
    "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac09"
    "43bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
    "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f161"
    "0e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
    "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8ca"
    "c60c905c15fc910840b94c00a0b9d0";

std::vector<Ed25519Vector> Rfc8032Vectors() {
  return {
      // RFC 8032 §7.1, -----TEST 1 (empty message).
      {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
       "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
       "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9"
       "b46bd25bf5f0595bbe24655141438e7a100b"},
      // RFC 8032 §7.1, -----TEST 2 (one-byte message).
      {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
       "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
       "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f1"
       "1d8c387b2eaeb4302aeeb00d291612bb0c00"},
      // RFC 8032 §7.1, -----TEST 3 (two-byte message).
      {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
       "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
       "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984d"
       "c6594a7c15e9716ed28dc027beceea1ec40a"},
      // RFC 8032 §7.1, -----TEST 1024 (1023-byte message).
      {"TEST 1024", "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
       "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e", kTest1024Message,
       "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436"
       "d94b5e8fcd4f681e30a6ac00a9704a188a03"},
      // RFC 8032 §7.1, -----TEST SHA(abc) (the message is SHA-512("abc")).
      {"TEST SHA(abc)", "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
       "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
       "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3fe"
       "ebbd454d4423643ce80e2a9ac94fa54ca49f",
       "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431"
       "e0303dca179c138ac17ad9bef1177331a704"},
  };
}

TEST(Ed25519, Rfc8032VectorsGiveExactPublicKeyAndSignature) {
  for (const auto& v : Rfc8032Vectors()) {
    SCOPED_TRACE(v.name);
    const Bytes seed = Hex(v.secret_key);
    const Bytes message = Hex(v.message);
    auto kp = Ed25519FromSeed(seed);
    ASSERT_TRUE(kp.ok());
    EXPECT_EQ(ToHex(kp->public_key), v.public_key);
    // The 64-byte secret key is seed || public key.
    EXPECT_EQ(ToHex(kp->secret_key.expose().first(32)), v.secret_key);
    EXPECT_EQ(ToHex(kp->secret_key.expose().subspan(32)), v.public_key);

    auto sig = Ed25519Sign(kp->secret_key, message);
    ASSERT_TRUE(sig.ok());
    EXPECT_EQ(ToHex(*sig), v.signature);
    EXPECT_TRUE(Ed25519Verify(Hex(v.public_key), message, Hex(v.signature)).ok());
    EXPECT_TRUE(Ed25519IsStrictPublicKey(Hex(v.public_key)));
  }
}

TEST(Ed25519, Test1024MessageIs1023Bytes) {
  EXPECT_EQ(Hex(kTest1024Message).size(), 1023u);
  // SHA(abc) vector: the message really is SHA-512("abc").
  EXPECT_EQ(ToHex(Sha512(AsBytes("abc"))), Rfc8032Vectors()[4].message);
}

TEST(Ed25519, FlippingAnyBitOfSignatureIsRejected) {
  for (const auto& v : Rfc8032Vectors()) {
    SCOPED_TRACE(v.name);
    const Bytes pk = Hex(v.public_key);
    const Bytes message = Hex(v.message);
    Bytes sig = Hex(v.signature);
    for (std::size_t bit = 0; bit < sig.size() * 8; ++bit) {
      sig[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      auto st = Ed25519Verify(pk, message, sig);
      ASSERT_FALSE(st.ok()) << "bit " << bit;
      EXPECT_EQ(st.error().code, Errc::kAuthenticationFailed);
      sig[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    }
    EXPECT_TRUE(Ed25519Verify(pk, message, sig).ok());
  }
}

TEST(Ed25519, FlippingAnyBitOfMessageIsRejected) {
  // TEST 2, TEST 3 and SHA(abc) have short messages: every bit of each.
  for (const auto& v : Rfc8032Vectors()) {
    if (v.message.empty() || v.message.size() > 128) continue;
    SCOPED_TRACE(v.name);
    const Bytes pk = Hex(v.public_key);
    const Bytes sig = Hex(v.signature);
    Bytes message = Hex(v.message);
    for (std::size_t bit = 0; bit < message.size() * 8; ++bit) {
      message[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      ASSERT_FALSE(Ed25519Verify(pk, message, sig).ok()) << "bit " << bit;
      message[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    }
  }
}

TEST(Ed25519, AppendedOrTruncatedMessageIsRejected) {
  const auto v = Rfc8032Vectors()[3];  // TEST 1024
  const Bytes pk = Hex(v.public_key);
  const Bytes sig = Hex(v.signature);
  Bytes message = Hex(v.message);
  Bytes longer = message;
  longer.push_back(0);
  EXPECT_FALSE(Ed25519Verify(pk, longer, sig).ok());
  message.pop_back();
  EXPECT_FALSE(Ed25519Verify(pk, message, sig).ok());
  // The empty-message signature of TEST 1 does not verify a non-empty message.
  const auto t1 = Rfc8032Vectors()[0];
  EXPECT_FALSE(Ed25519Verify(Hex(t1.public_key), Bytes{0}, Hex(t1.signature)).ok());
}

TEST(Ed25519, FlippingAnyBitOfPublicKeyIsRejected) {
  for (const auto& v : Rfc8032Vectors()) {
    SCOPED_TRACE(v.name);
    const Bytes message = Hex(v.message);
    const Bytes sig = Hex(v.signature);
    Bytes pk = Hex(v.public_key);
    for (std::size_t bit = 0; bit < pk.size() * 8; ++bit) {
      pk[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      ASSERT_FALSE(Ed25519Verify(pk, message, sig).ok()) << "bit " << bit;
      pk[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    }
  }
}

TEST(Ed25519, SignatureUnderAnotherKeyIsRejected) {
  const auto vs = Rfc8032Vectors();
  // TEST 1's signature checked under TEST 2's key.
  EXPECT_EQ(Ed25519Verify(Hex(vs[1].public_key), {}, Hex(vs[0].signature)).error().code,
            Errc::kAuthenticationFailed);
}

TEST(Ed25519, NonCanonicalScalarSIsRejected) {
  // S + l encodes the same residue; RFC 8032 §5.1.7 requires S < l.
  const auto v = Rfc8032Vectors()[0];
  Bytes sig = Hex(v.signature);
  static const ByteArray<32> kL = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
                                   0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
                                   0,    0,    0,    0,    0,    0,    0,    0,
                                   0,    0,    0,    0,    0,    0,    0,    0x10};
  unsigned carry = 0;
  for (std::size_t i = 0; i < 32; ++i) {
    unsigned sum = sig[32 + i] + kL[i] + carry;
    sig[32 + i] = static_cast<std::uint8_t>(sum);
    carry = sum >> 8;
  }
  ASSERT_EQ(carry, 0u);
  EXPECT_FALSE(Ed25519Verify(Hex(v.public_key), {}, sig).ok());
}

TEST(Ed25519, WrongSizesAreInvalidArgument) {
  const auto v = Rfc8032Vectors()[1];
  const Bytes pk = Hex(v.public_key);
  const Bytes sig = Hex(v.signature);
  const Bytes msg = Hex(v.message);
  Bytes short_pk(pk.begin(), pk.end() - 1);
  Bytes long_sig = sig;
  long_sig.push_back(0);
  EXPECT_EQ(Ed25519Verify(short_pk, msg, sig).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(Ed25519Verify(pk, msg, long_sig).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(Ed25519Verify(pk, msg, ByteSpan(sig).first(63)).error().code,
            Errc::kInvalidArgument);
  EXPECT_EQ(Ed25519FromSeed(Bytes(31)).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(Ed25519FromSeed(Bytes(64)).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(Ed25519Sign(SecretBytes(32), msg).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(Ed25519Sign(SecretBytes(), msg).error().code, Errc::kInvalidArgument);
}

TEST(Ed25519, GeneratedKeysSignAndVerifyAndAreDeterministicInTests) {
  DeterministicRandom rng_a(7);
  DeterministicRandom rng_b(7);
  auto a = Ed25519Generate(rng_a);
  auto b = Ed25519Generate(rng_b);
  EXPECT_EQ(a.public_key, b.public_key);
  auto c = Ed25519Generate(rng_a);
  EXPECT_NE(a.public_key, c.public_key);
  EXPECT_TRUE(Ed25519IsStrictPublicKey(a.public_key));

  const Bytes msg = {'h', 'i'};
  auto sig = Ed25519Sign(a.secret_key, msg);
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(Ed25519Verify(a.public_key, msg, *sig).ok());
  EXPECT_FALSE(Ed25519Verify(c.public_key, msg, *sig).ok());
}

// The eight points of order dividing 8 (the torsion subgroup), canonically encoded.
std::vector<Bytes> SmallOrderPoints() {
  return {
      Hex("0100000000000000000000000000000000000000000000000000000000000000"),  // identity
      Hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  // order 2
      Hex("0000000000000000000000000000000000000000000000000000000000000000"),  // order 4
      Hex("0000000000000000000000000000000000000000000000000000000000000080"),  // order 4
      Hex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),  // order 8
      Hex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),  // order 8
      Hex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),  // order 8
      Hex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),  // order 8
  };
}

TEST(Ed25519IsStrictPublicKey, RejectsEverySmallOrderPoint) {
  for (const Bytes& p : SmallOrderPoints()) {
    SCOPED_TRACE(ToHex(p));
    EXPECT_FALSE(Ed25519IsStrictPublicKey(p));
  }
}

TEST(Ed25519IsStrictPublicKey, SmallOrderPointsReallyHaveSmallOrder) {
  // Guards the list above: 8·T is the identity for every entry (computed by
  // adding T to itself), and each entry is on the curve.
  static const ByteArray<32> kIdentity = {1};
  for (const Bytes& t : SmallOrderPoints()) {
    SCOPED_TRACE(ToHex(t));
    ByteArray<32> acc;
    std::copy(t.begin(), t.end(), acc.begin());
    for (int i = 0; i < 3; ++i) {  // acc = 2·acc three times: 8·T
      ASSERT_EQ(crypto_core_ed25519_add(acc.data(), acc.data(), acc.data()), 0);
    }
    EXPECT_EQ(acc, kIdentity);
  }
}

TEST(Ed25519IsStrictPublicKey, RejectsNonCanonicalEncodings) {
  // Every encoding with y >= p: y = p + k for k in 0..18 (p + 18 < 2^255), with
  // either sign bit. For the k where y = k is on the curve (0, 1, 3, 4, 5, 6, 9,
  // 10, 14, 15, 16, 18) these are second encodings of a point; all of those
  // points have a small-order component, so no strict key has a second encoding.
  for (unsigned k = 0; k <= 18; ++k) {
    for (unsigned sign = 0; sign <= 1; ++sign) {
      Bytes enc(32, 0xff);
      enc[0] = static_cast<std::uint8_t>(0xed + k);  // p = 2^255 - 19 = ed ff .. ff 7f
      enc[31] = static_cast<std::uint8_t>(sign ? 0xff : 0x7f);
      SCOPED_TRACE(ToHex(enc));
      EXPECT_FALSE(Ed25519IsStrictPublicKey(enc));
    }
  }
  // x = 0 with the sign bit set ("negative zero"): identity and the order-2 point.
  EXPECT_FALSE(Ed25519IsStrictPublicKey(
      Hex("0100000000000000000000000000000000000000000000000000000000000080")));
  EXPECT_FALSE(Ed25519IsStrictPublicKey(
      Hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")));
}

TEST(Ed25519IsStrictPublicKey, RejectsKeyWithTorsionComponent) {
  // A valid prime-order key plus a point of order 8 is on the curve, canonical
  // and not of small order, but it is not in the prime-order subgroup.
  const Bytes valid = Hex(Rfc8032Vectors()[0].public_key);
  ASSERT_TRUE(Ed25519IsStrictPublicKey(valid));
  for (const Bytes& t : SmallOrderPoints()) {
    if (t == Hex("0100000000000000000000000000000000000000000000000000000000000000")) continue;
    SCOPED_TRACE(ToHex(t));
    ByteArray<32> torsioned;
    ASSERT_EQ(crypto_core_ed25519_add(torsioned.data(), valid.data(), t.data()), 0);
    ASSERT_NE(ToHex(torsioned), ToHex(valid));
    EXPECT_FALSE(Ed25519IsStrictPublicKey(torsioned));
  }
}

TEST(Ed25519IsStrictPublicKey, RejectsWrongSizesAndOffCurvePoints) {
  EXPECT_FALSE(Ed25519IsStrictPublicKey({}));
  EXPECT_FALSE(Ed25519IsStrictPublicKey(Bytes(31, 1)));
  EXPECT_FALSE(Ed25519IsStrictPublicKey(Bytes(33, 1)));
  // y = 2 is not on the curve (no x satisfies the equation).
  EXPECT_FALSE(Ed25519IsStrictPublicKey(
      Hex("0200000000000000000000000000000000000000000000000000000000000000")));
}

}  // namespace
}  // namespace rhizome::crypto
