// X25519: RFC 7748 known answers and small-order peer keys.
#include <gtest/gtest.h>

#include <vector>

#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/random.h"
#include "test_support.h"

namespace rhizome::crypto {
namespace {

using rhizome::testing::Hex;

TEST(X25519, Rfc7748ScalarMultVectors) {
  struct Vector {
    const char* scalar;
    const char* u;
    const char* out;
  };
  const Vector vectors[] = {
      // RFC 7748 §5.2, first test vector.
      {"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
       "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
       "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
      // RFC 7748 §5.2, second test vector (the input u has bit 255 set, which
      // X25519 must mask).
      {"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
       "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
       "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
  };
  for (const auto& v : vectors) {
    SCOPED_TRACE(v.scalar);
    ByteArray<32> out{};
    ASSERT_TRUE(X25519(Hex(v.scalar), Hex(v.u), out).ok());
    EXPECT_EQ(ToHex(out), v.out);
  }
}

TEST(X25519, Rfc7748AliceBobDiffieHellman) {
  // RFC 7748 §6.1.
  const Bytes alice_sk = Hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const Bytes bob_sk = Hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  const char* alice_pk = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
  const char* bob_pk = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
  const char* shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

  auto alice = X25519FromSecret(alice_sk);
  auto bob = X25519FromSecret(bob_sk);
  ASSERT_TRUE(alice.ok());
  ASSERT_TRUE(bob.ok());
  EXPECT_EQ(ToHex(alice->public_key), alice_pk);
  EXPECT_EQ(ToHex(bob->public_key), bob_pk);
  EXPECT_EQ(ToHex(alice->secret_key.expose()), ToHex(alice_sk));

  ByteArray<32> pk{};
  ASSERT_TRUE(X25519PublicKey(alice_sk, pk).ok());
  EXPECT_EQ(ToHex(pk), alice_pk);

  ByteArray<32> k_alice{};
  ByteArray<32> k_bob{};
  ASSERT_TRUE(X25519(alice_sk, Hex(bob_pk), k_alice).ok());
  ASSERT_TRUE(X25519(bob_sk, Hex(alice_pk), k_bob).ok());
  EXPECT_EQ(ToHex(k_alice), shared);
  EXPECT_EQ(ToHex(k_bob), shared);
}

// Every u-coordinate that X25519 (RFC 7748 §5: bit 255 masked, then reduced
// mod p) maps to a point of small order: 0, 1, the two order-8 points
// (325606250916557431795983626356110631294008115727848805560023387167927233504
// and 39382357235489614581723060781553021112529911719440698176882885853963445705823),
// p-1, p and p+1, each also with bit 255 set. The other entries of the usual
// list (p + the order-8 values, 2p-1, 2p, 2p+1) are at least 2^255: with bit
// 255 masked they are ordinary points, not small-order ones.
std::vector<Bytes> SmallOrderU() {
  std::vector<Bytes> out = {
      Hex("0000000000000000000000000000000000000000000000000000000000000000"),  // 0
      Hex("0100000000000000000000000000000000000000000000000000000000000000"),  // 1
      Hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),  // order 8
      Hex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),  // order 8
      Hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  // p-1
      Hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  // p
      Hex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  // p+1
  };
  const std::size_t n = out.size();
  for (std::size_t i = 0; i < n; ++i) {
    Bytes high = out[i];
    high[31] |= 0x80;
    out.push_back(high);
  }
  return out;
}

TEST(X25519, EverySmallOrderPublicKeyIsCryptoFailure) {
  DeterministicRandom rng(1);
  for (int round = 0; round < 4; ++round) {
    auto kp = X25519Generate(rng);
    for (const Bytes& u : SmallOrderU()) {
      SCOPED_TRACE(ToHex(u));
      ByteArray<32> out;
      out.fill(0xaa);
      auto st = X25519(kp.secret_key.expose(), u, out);
      ASSERT_FALSE(st.ok());
      EXPECT_EQ(st.error().code, Errc::kCryptoFailure);
      // Nothing usable is left in the output.
      EXPECT_EQ(out, ByteArray<32>{});
    }
  }
}

TEST(X25519, WrongSizesAreInvalidArgument) {
  const Bytes sk(32, 7);
  const Bytes pk = Hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  ByteArray<32> out{};
  EXPECT_EQ(X25519(Bytes(31, 7), pk, out).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(X25519(sk, Bytes(33, 7), out).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(X25519(sk, {}, out).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(X25519PublicKey(Bytes(16), out).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(X25519FromSecret(Bytes(33)).error().code, Errc::kInvalidArgument);
}

TEST(X25519, GeneratedPairsAgreeAndAreDeterministicInTests) {
  DeterministicRandom rng_a(42);
  DeterministicRandom rng_b(42);
  auto a = X25519Generate(rng_a);
  auto a_again = X25519Generate(rng_b);
  auto b = X25519Generate(rng_a);
  EXPECT_EQ(a.public_key, a_again.public_key);
  EXPECT_TRUE(a.secret_key.ConstantTimeEquals(a_again.secret_key));
  EXPECT_NE(a.public_key, b.public_key);

  ByteArray<32> ab{};
  ByteArray<32> ba{};
  ASSERT_TRUE(X25519(a.secret_key.expose(), b.public_key, ab).ok());
  ASSERT_TRUE(X25519(b.secret_key.expose(), a.public_key, ba).ok());
  EXPECT_EQ(ab, ba);
  EXPECT_NE(ab, ByteArray<32>{});
}

}  // namespace
}  // namespace rhizome::crypto
