// SecretBytes, StackSecret, Wipe, hex coding, ConstantTimeEqual and the random sources.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <type_traits>
#include <utility>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/secret.h"
#include "test_support.h"

namespace rhizome::crypto {
namespace {

bool AllZero(ByteSpan b) {
  return std::all_of(b.begin(), b.end(), [](std::uint8_t x) { return x == 0; });
}

// Compile-time contract: secrets are move-only and wiped stack arrays stay put.
static_assert(!std::is_copy_constructible_v<SecretBytes>);
static_assert(!std::is_copy_assignable_v<SecretBytes>);
static_assert(std::is_nothrow_move_constructible_v<SecretBytes>);
static_assert(std::is_nothrow_move_assignable_v<SecretBytes>);
static_assert(!std::is_copy_constructible_v<StackSecret<32>>);
static_assert(!std::is_move_constructible_v<StackSecret<32>>);

TEST(SecretBytes, NewSecretIsZeroFilledOfTheRequestedSize) {
  SecretBytes s(48);
  EXPECT_EQ(s.size(), 48u);
  EXPECT_FALSE(s.empty());
  EXPECT_TRUE(AllZero(s.expose()));
  SecretBytes empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.size(), 0u);
  SecretBytes zero_sized(0);
  EXPECT_TRUE(zero_sized.empty());
}

TEST(SecretBytes, MoveLeavesTheSourceEmpty) {
  SecretBytes a = SecretBytes::CopyFrom(Bytes{1, 2, 3, 4});
  const std::uint8_t* data = a.expose().data();
  SecretBytes b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(a.expose().size(), 0u);
  EXPECT_EQ(b.size(), 4u);
  EXPECT_EQ(b.expose().data(), data);  // the buffer moved, nothing was copied

  SecretBytes c(8);
  c = std::move(b);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(ToHex(c.expose()), "01020304");

  // Self-move-assignment keeps the value.
  SecretBytes& alias = c;
  c = std::move(alias);
  EXPECT_EQ(ToHex(c.expose()), "01020304");
}

TEST(SecretBytes, CloneIsADeepCopy) {
  SecretBytes a = SecretBytes::CopyFrom(Bytes{9, 8, 7});
  SecretBytes b = a.Clone();
  EXPECT_NE(a.expose().data(), b.expose().data());
  EXPECT_TRUE(a.ConstantTimeEquals(b));
  b.expose_mut()[0] = 0;
  EXPECT_EQ(a.expose()[0], 9);
  EXPECT_FALSE(a.ConstantTimeEquals(b));
  EXPECT_TRUE(SecretBytes().Clone().empty());
}

TEST(SecretBytes, CopyFromDoesNotAliasTheSource) {
  Bytes src = {5, 6, 7};
  SecretBytes s = SecretBytes::CopyFrom(src);
  src[0] = 0;
  EXPECT_EQ(ToHex(s.expose()), "050607");
}

TEST(SecretBytes, ConstantTimeEqualsComparesContentAndSize) {
  SecretBytes a = SecretBytes::CopyFrom(Bytes{1, 2, 3});
  SecretBytes b = SecretBytes::CopyFrom(Bytes{1, 2, 3});
  SecretBytes c = SecretBytes::CopyFrom(Bytes{1, 2, 4});
  SecretBytes d = SecretBytes::CopyFrom(Bytes{1, 2});
  EXPECT_TRUE(a.ConstantTimeEquals(b));
  EXPECT_FALSE(a.ConstantTimeEquals(c));
  EXPECT_FALSE(a.ConstantTimeEquals(d));
  EXPECT_FALSE(d.ConstantTimeEquals(a));
  EXPECT_TRUE(SecretBytes().ConstantTimeEquals(SecretBytes()));
}

TEST(SecretBytes, RandomFillsFromTheSource) {
  DeterministicRandom r1(3), r2(3);
  SecretBytes a = SecretBytes::Random(r1, 64);
  SecretBytes b = SecretBytes::Random(r2, 64);
  EXPECT_EQ(a.size(), 64u);
  EXPECT_TRUE(a.ConstantTimeEquals(b));
  EXPECT_FALSE(AllZero(a.expose()));
  SecretBytes c = SecretBytes::Random(SystemRandom(), 32);
  SecretBytes d = SecretBytes::Random(SystemRandom(), 32);
  EXPECT_FALSE(AllZero(c.expose()));  // 2^-256 chance of a false failure
  EXPECT_FALSE(c.ConstantTimeEquals(d));
}

TEST(Wipe, ZeroesTheBytes) {
  Bytes b = {1, 2, 3, 4, 5};
  Wipe(b);
  EXPECT_TRUE(AllZero(b));
  Wipe({});  // empty is fine
  StackSecret<16> s;
  EXPECT_TRUE(AllZero(s.expose()));
  std::fill(s.expose_mut().begin(), s.expose_mut().end(), 0xab);
  EXPECT_EQ(s.expose()[15], 0xab);
  EXPECT_EQ(StackSecret<16>::size(), 16u);
}

TEST(Hex, RoundTripsEveryByteValue) {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
  const std::string hex = ToHex(all);
  EXPECT_EQ(hex.size(), 512u);
  EXPECT_EQ(hex.substr(0, 8), "00010203");
  EXPECT_EQ(hex.substr(504), "fcfdfeff");
  auto back = FromHex(hex);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, all);
  EXPECT_EQ(ToHex({}), "");
  auto empty = FromHex("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(Hex, AcceptsEitherCaseAndWritesLowercase) {
  auto upper = FromHex("DEADBEEF");
  auto mixed = FromHex("DeAdBeEf");
  ASSERT_TRUE(upper.ok() && mixed.ok());
  EXPECT_EQ(*upper, *mixed);
  EXPECT_EQ(ToHex(*upper), "deadbeef");
}

TEST(Hex, MalformedHexIsRejected) {
  for (const char* bad : {"0", "abc", "zz", "0g", "g0", " 00", "00 ", "0x00", "-1", "\xff\xff"}) {
    auto r = FromHex(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::kMalformed) << bad;
  }
  // An embedded NUL is not a hex digit either.
  auto r = FromHex(std::string_view("0\0", 2));
  EXPECT_FALSE(r.ok());
}

TEST(ConstantTimeEqual, ComparesContentAndRejectsSizeMismatch) {
  const Bytes a = {1, 2, 3, 4};
  const Bytes b = {1, 2, 3, 4};
  const Bytes c = {1, 2, 3, 5};
  EXPECT_TRUE(ConstantTimeEqual(a, b));
  EXPECT_FALSE(ConstantTimeEqual(a, c));
  EXPECT_FALSE(ConstantTimeEqual(a, ByteSpan(a).first(3)));
  EXPECT_FALSE(ConstantTimeEqual(ByteSpan(a).first(3), a));
  EXPECT_FALSE(ConstantTimeEqual(a, {}));
  EXPECT_TRUE(ConstantTimeEqual({}, {}));
  // A difference in the first byte is found as well as in the last.
  Bytes d = a;
  d[0] ^= 0x80;
  EXPECT_FALSE(ConstantTimeEqual(a, d));
}

TEST(DeterministicRandom, SameSeedGivesSameStream) {
  DeterministicRandom a(1234), b(1234);
  for (std::size_t len : {1u, 7u, 32u, 100u, 4096u}) {
    Bytes x(len), y(len);
    a.Fill(x);
    b.Fill(y);
    EXPECT_EQ(x, y) << len;
  }
}

TEST(DeterministicRandom, DifferentSeedsGiveDifferentStreams) {
  DeterministicRandom a(1), b(2), c(1ull << 40);
  Bytes x(32), y(32), z(32);
  a.Fill(x);
  b.Fill(y);
  c.Fill(z);
  EXPECT_NE(x, y);
  EXPECT_NE(x, z);
  EXPECT_NE(y, z);
}

TEST(DeterministicRandom, SuccessiveCallsGiveFreshBytes) {
  DeterministicRandom rng(99);
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    Bytes x(16);
    rng.Fill(x);
    EXPECT_TRUE(seen.insert(ToHex(x)).second) << "repeat at call " << i;
  }
  // The Array<N> helper draws from the same stream.
  DeterministicRandom r1(5), r2(5);
  const auto arr = r1.Array<24>();
  Bytes manual(24);
  r2.Fill(manual);
  EXPECT_TRUE(std::equal(arr.begin(), arr.end(), manual.begin()));
  // Filling nothing consumes nothing.
  DeterministicRandom r3(5), r4(5);
  r3.Fill({});
  Bytes p(8), q(8);
  r3.Fill(p);
  r4.Fill(q);
  EXPECT_EQ(p, q);
}

TEST(SystemRandom, FillsWithFreshBytes) {
  Bytes x(32), y(32);
  SystemRandom().Fill(x);
  SystemRandom().Fill(y);
  EXPECT_NE(x, y);
  EXPECT_FALSE(AllZero(x));
  SystemRandom().Fill({});  // empty is fine
}

}  // namespace
}  // namespace rhizome::crypto
