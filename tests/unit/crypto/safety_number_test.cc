// Safety numbers (DESIGN §4): shape, symmetry, and a known answer that pins the construction.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "rhizome/crypto/random.h"
#include "rhizome/crypto/safety_number.h"
#include "test_support.h"

namespace rhizome::crypto {
namespace {

using rhizome::testing::Hex;

// Two Ed25519 identity keys: the public keys of RFC 8032 §7.1 TEST 1 and TEST 2.
const char kKeyA[] = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const char kKeyB[] = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

bool AllDigits(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

TEST(SafetyNumber, KnownAnswerPinsTheConstruction) {
  // Computed independently with Python's hashlib, following
  // crypto/src/safety_number.cc:
  //   h = sha512(b"\0\0" + pk + b"rhizome/v1/safety-number")
  //   5200 times: h = sha512(h + pk)
  //   digits = "".join("%05d" % (int.from_bytes(h[5*i:5*i+5], "big") % 100000) for i in range(6))
  // A change to the construction changes every user's safety numbers: it must
  // come with a version bump, not silently.
  auto a = SafetyCode(Hex(kKeyA));
  auto b = SafetyCode(Hex(kKeyB));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, "690496805935274249936789729176");
  EXPECT_EQ(*b, "376115913173452608614696955115");
  auto zero = SafetyCode(Bytes(32, 0));
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(*zero, "429513487627354752356221362179");

  auto n = SafetyNumber(Hex(kKeyA), Hex(kKeyB));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, "376115913173452608614696955115690496805935274249936789729176");
}

TEST(SafetyNumber, ThirtyDigitsPerPartySixtyInAll) {
  DeterministicRandom rng(5);
  for (int i = 0; i < 8; ++i) {
    const auto a = rng.Array<32>();
    const auto b = rng.Array<32>();
    auto code = SafetyCode(a);
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(code->size(), 30u);
    EXPECT_TRUE(AllDigits(*code));
    auto n = SafetyNumber(a, b);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(n->size(), 60u);
    EXPECT_TRUE(AllDigits(*n));
    // The number is both halves, lower first.
    auto code_b = SafetyCode(b);
    ASSERT_TRUE(code_b.ok());
    EXPECT_EQ(*n, std::min(*code, *code_b) + std::max(*code, *code_b));
  }
}

TEST(SafetyNumber, IsSymmetric) {
  DeterministicRandom rng(6);
  for (int i = 0; i < 8; ++i) {
    const auto a = rng.Array<32>();
    const auto b = rng.Array<32>();
    auto ab = SafetyNumber(a, b);
    auto ba = SafetyNumber(b, a);
    ASSERT_TRUE(ab.ok() && ba.ok());
    EXPECT_EQ(*ab, *ba);
  }
}

TEST(SafetyNumber, DifferentKeysGiveDifferentNumbers) {
  const Bytes a = Hex(kKeyA);
  const Bytes b = Hex(kKeyB);
  auto base = SafetyNumber(a, b);
  ASSERT_TRUE(base.ok());
  // Any single-bit change of either key changes the number (a MITM's key differs).
  for (std::size_t bit = 0; bit < 256; bit += 17) {
    Bytes a2 = a;
    a2[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    auto n = SafetyNumber(a2, b);
    ASSERT_TRUE(n.ok());
    EXPECT_NE(*n, *base) << bit;
  }
  auto c = SafetyCode(a);
  auto d = SafetyCode(b);
  ASSERT_TRUE(c.ok() && d.ok());
  EXPECT_NE(*c, *d);
}

TEST(SafetyNumber, WrongKeySizeIsInvalidArgument) {
  EXPECT_EQ(SafetyCode(Bytes(31)).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(SafetyCode(Bytes(33)).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(SafetyNumber(Bytes(32), Bytes(31)).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(SafetyNumber(Bytes(0), Bytes(32)).error().code, Errc::kInvalidArgument);
}

TEST(SafetyNumber, GroupDigitsInFives) {
  EXPECT_EQ(GroupDigits("1234567890"), "12345 67890");
  EXPECT_EQ(GroupDigits("123456"), "12345 6");
  EXPECT_EQ(GroupDigits(""), "");
  const std::string sixty(60, '7');
  const std::string grouped = GroupDigits(sixty);
  EXPECT_EQ(grouped.size(), 60u + 11u);
  EXPECT_EQ(std::count(grouped.begin(), grouped.end(), ' '), 11);
}

}  // namespace
}  // namespace rhizome::crypto
