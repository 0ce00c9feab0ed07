// ristretto255: RFC 9496 known answers, the strict decoding rules of POLLS.md §1
// and the non-canonical key-image (double vote) attack.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "rhizome/crypto/random.h"
#include "rhizome/crypto/ristretto.h"
#include "test_support.h"

namespace rhizome::crypto {
namespace {

using nlohmann::json;
using rhizome::testing::Hex;
using rhizome::testing::ReadFileOrDie;
using rhizome::testing::VectorPath;

json Vectors() { return json::parse(ReadFileOrDie(VectorPath("ristretto255_kat.json"))); }

RistrettoScalar ScalarOrDie(const std::string& hex) {
  auto s = RistrettoScalar::Decode(Hex(hex));
  EXPECT_TRUE(s.ok()) << hex;
  return std::move(s).value();
}

RistrettoPoint PointOrDie(const std::string& hex) {
  auto p = RistrettoPoint::Decode(Hex(hex));
  EXPECT_TRUE(p.ok()) << hex;
  return std::move(p).value();
}

const char kL[] = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010";
const char kLPlusOne[] = "eed3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010";
const char kLMinusOne[] = "ecd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010";
const char kZero[] = "0000000000000000000000000000000000000000000000000000000000000000";

TEST(Ristretto255, BaseMultiplesMatchVectors) {
  // RFC 9496 §A.1 (multiples of the generator) plus random scalars.
  const json v = Vectors();
  ASSERT_FALSE(v.at("base_multiples").empty());
  for (const auto& pair : v.at("base_multiples")) {
    const std::string scalar = pair.at(0).get<std::string>();
    const std::string point = pair.at(1).get<std::string>();
    SCOPED_TRACE(scalar);
    auto p = RistrettoPoint::MulBase(ScalarOrDie(scalar));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(ToHex(p->bytes()), point);
    EXPECT_TRUE(RistrettoPoint::Decode(Hex(point)).ok());
  }
}

TEST(Ristretto255, ScalarMultMatchesVector) {
  // [scalar, point, scalar·point]
  const json v = Vectors().at("scalarmult");
  ASSERT_EQ(v.size(), 3u);
  const RistrettoScalar s = ScalarOrDie(v.at(0).get<std::string>());
  const RistrettoPoint p = PointOrDie(v.at(1).get<std::string>());
  auto q = p.Mul(s);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(ToHex(q->bytes()), v.at(2).get<std::string>());
}

TEST(Ristretto255, FromHashMatchesVectors) {
  // RFC 9496 §A.3 (hash-to-group) plus random inputs.
  const json v = Vectors();
  ASSERT_FALSE(v.at("from_hash").empty());
  for (const auto& pair : v.at("from_hash")) {
    SCOPED_TRACE(pair.at(0).get<std::string>());
    auto p = RistrettoPoint::FromHash(Hex(pair.at(0).get<std::string>()));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(ToHex(p->bytes()), pair.at(1).get<std::string>());
  }
  EXPECT_EQ(RistrettoPoint::FromHash(Bytes(63)).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(RistrettoPoint::FromHash(Bytes(32)).error().code, Errc::kInvalidArgument);
}

TEST(Ristretto255, NoncanonicalKeyImageAttackIsRejected) {
  // Security regression (POLLS.md §1): the honest key image decodes; the same
  // point with bit 255 set (which libsodium 1.0.18's is_valid_point accepts)
  // must not, or one voter could cast two ballots with "different" key images.
  const json v = Vectors().at("noncanonical_KI_attack");
  const Bytes honest = Hex(v.at("KI_honest").get<std::string>());
  const Bytes evil = Hex(v.at("KI_evil").get<std::string>());
  ASSERT_NE(honest, evil);
  ASSERT_EQ(evil[31], honest[31] | 0x80);
  EXPECT_TRUE(RistrettoPoint::Decode(honest).ok());
  auto r = RistrettoPoint::Decode(evil);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kMalformed);
}

TEST(Ristretto255, Bit255SetIsRejectedForEveryValidPoint) {
  const json v = Vectors();
  for (const auto& pair : v.at("base_multiples")) {
    Bytes enc = Hex(pair.at(1).get<std::string>());
    enc[31] |= 0x80;
    EXPECT_FALSE(RistrettoPoint::Decode(enc).ok()) << ToHex(enc);
  }
}

TEST(Ristretto255, IdentityAndAllZeroEncodingAreRejected) {
  // The identity's encoding is 32 zero bytes.
  auto r = RistrettoPoint::Decode(Hex(kZero));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kMalformed);
  // ...and with bit 255 set it is still not a point we accept.
  EXPECT_FALSE(
      RistrettoPoint::Decode(Hex("0000000000000000000000000000000000000000000000000000000000000080"))
          .ok());
}

TEST(Ristretto255, Rfc9496InvalidEncodingsAreRejected) {
  // RFC 9496 §A.2, a selection from each class.
  const char* bad[] = {
      // non-canonical field encodings
      "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
      "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      // negative field elements
      "0100000000000000000000000000000000000000000000000000000000000000",
      "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "ed57ffd8c914fb201471d1c3d245ce3c746fcbe63a3679d51b6a516ebebe0e20",
      "c34c4e1826e5d403b78e246e88aa051c36ccf0aafebffe137d148a2bf9104562",
      // non-square x^2
      "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371",
      "4eac077a713c57b4f4397629a4145982c661f48044dd3f96427d40b147d9742f",
      "de6a7b00deadc788eb6b6c8d20c0ae96c2f2019078fa604fee5b87d6e989ad7b",
      // negative xy value
      "3eb858e78f5a7254d8c9731174a94f76755fd3941c0ac93735c07ba14579630e",
      "a45fdc55c76448c049a1ab33f17023edfb2be3581e9c7aade8a6125215e04220",
      "d483fe813c6ba647ebbfd3ec41adca1c6130c2beeee9d9bf065c8d151c5f396e",
      // s = -1, which gives t = 0
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  };
  for (const char* hex : bad) {
    auto r = RistrettoPoint::Decode(Hex(hex));
    ASSERT_FALSE(r.ok()) << hex;
    EXPECT_EQ(r.error().code, Errc::kMalformed) << hex;
  }
  EXPECT_EQ(RistrettoPoint::Decode(Bytes(31, 1)).error().code, Errc::kMalformed);
  EXPECT_EQ(RistrettoPoint::Decode(Bytes(33, 1)).error().code, Errc::kMalformed);
}

TEST(RistrettoScalar, NonCanonicalScalarsAreRejected) {
  for (const char* hex : {kL, kLPlusOne,
                          "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                          "0000000000000000000000000000000000000000000000000000000000000080"}) {
    auto r = RistrettoScalar::Decode(Hex(hex));
    ASSERT_FALSE(r.ok()) << hex;
    EXPECT_EQ(r.error().code, Errc::kMalformed) << hex;
  }
  EXPECT_TRUE(RistrettoScalar::Decode(Hex(kLMinusOne)).ok());
  EXPECT_TRUE(RistrettoScalar::Decode(Hex(kZero)).ok());
  EXPECT_EQ(RistrettoScalar::Decode(Bytes(31)).error().code, Errc::kMalformed);
  EXPECT_EQ(RistrettoScalar::Decode(Bytes(64)).error().code, Errc::kMalformed);
}

TEST(RistrettoScalar, ZeroScalarTimesPointIsCryptoFailure) {
  const RistrettoScalar zero = ScalarOrDie(kZero);
  EXPECT_TRUE(zero.IsZero());
  auto base = RistrettoPoint::MulBase(zero);
  ASSERT_FALSE(base.ok());
  EXPECT_EQ(base.error().code, Errc::kCryptoFailure);

  const RistrettoPoint p = PointOrDie(Vectors().at("base_multiples").at(1).at(1).get<std::string>());
  auto r = p.Mul(zero);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kCryptoFailure);
  // l ≡ 0: a scalar reduced from l·2^0 (FromWide) is zero too.
  Bytes wide(64, 0);
  const Bytes l = Hex(kL);
  std::copy(l.begin(), l.end(), wide.begin());
  auto l_reduced = RistrettoScalar::FromWide(wide);
  ASSERT_TRUE(l_reduced.ok());
  EXPECT_TRUE(l_reduced->IsZero());
  EXPECT_EQ(p.Mul(*l_reduced).error().code, Errc::kCryptoFailure);
}

TEST(RistrettoScalar, ArithmeticIsConsistentWithPoints) {
  DeterministicRandom rng(11);
  const RistrettoScalar a = RistrettoScalar::Random(rng);
  const RistrettoScalar b = RistrettoScalar::Random(rng);
  EXPECT_FALSE(a.IsZero());
  EXPECT_NE(a.bytes(), b.bytes());
  EXPECT_EQ(a.Add(b).Sub(b).bytes(), a.bytes());
  EXPECT_TRUE(a.Sub(a).IsZero());
  // Random scalars are canonical.
  EXPECT_TRUE(RistrettoScalar::Decode(a.bytes()).ok());

  auto aG = RistrettoPoint::MulBase(a);
  auto bG = RistrettoPoint::MulBase(b);
  auto sumG = RistrettoPoint::MulBase(a.Add(b));
  auto abG = RistrettoPoint::MulBase(a.Mul(b));
  ASSERT_TRUE(aG.ok() && bG.ok() && sumG.ok() && abG.ok());
  EXPECT_EQ(aG->Add(*bG), *sumG);  // aG + bG = (a+b)G
  EXPECT_EQ(sumG->Sub(*bG), *aG);
  auto a_bG = bG->Mul(a);  // a·(bG) = (ab)G
  ASSERT_TRUE(a_bG.ok());
  EXPECT_EQ(*a_bG, *abG);
}

TEST(RistrettoPoint, AdditionMayGiveTheIdentityButItDoesNotDecode) {
  const RistrettoPoint g =
      PointOrDie(Vectors().at("base_multiples").at(0).at(1).get<std::string>());
  auto neg_g = g.Mul(ScalarOrDie(kLMinusOne));  // (l-1)·G = -G
  ASSERT_TRUE(neg_g.ok());
  const RistrettoPoint identity = g.Add(*neg_g);
  EXPECT_EQ(ToHex(identity.bytes()), kZero);
  EXPECT_EQ(ToHex(g.Sub(g).bytes()), kZero);
  EXPECT_FALSE(RistrettoPoint::Decode(identity.bytes()).ok());
}

TEST(RistrettoScalar, FromWideReducesAndChecksSize) {
  EXPECT_EQ(RistrettoScalar::FromWide(Bytes(32)).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(RistrettoScalar::FromWide(Bytes(65)).error().code, Errc::kInvalidArgument);
  // l + 1 reduces to 1.
  Bytes wide(64, 0);
  const Bytes l1 = Hex(kLPlusOne);
  std::copy(l1.begin(), l1.end(), wide.begin());
  auto one = RistrettoScalar::FromWide(wide);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(ToHex(one->bytes()),
            "0100000000000000000000000000000000000000000000000000000000000000");
}

}  // namespace
}  // namespace rhizome::crypto
