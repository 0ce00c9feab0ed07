#include "rhizome/protocol/padding.h"

#include <gtest/gtest.h>

#include "wire_test_util.h"

namespace rhizome::protocol {
namespace {

Bytes Content(std::size_t size) {
  Bytes b(size);
  // Content that looks like padding (0x80 and 0x00) is the tricky case.
  for (std::size_t i = 0; i < size; ++i) b[i] = (i % 3 == 0) ? 0x80 : (i % 3 == 1 ? 0x00 : 0x5a);
  return b;
}

class PaddingTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::InitCryptoOnce(); }
};

TEST_F(PaddingTest, EveryClassBoundaryPicksTheSmallestFittingClass) {
  const std::pair<std::size_t, std::size_t> cases[] = {
      {0, 256},      {1, 256},      {254, 256},    {255, 256},    {256, 1024},
      {257, 1024},   {1023, 1024},  {1024, 4096},  {4095, 4096},  {4096, 16384},
      {16382, 16384}, {16383, 16384},
  };
  for (auto [size, padded] : cases) {
    auto out = Pad(Content(size), PaddingPolicy::kSmallestFitting);
    ASSERT_TRUE(out.ok()) << size;
    EXPECT_EQ(out->size(), padded) << size;
    EXPECT_EQ(PaddedSize(size, PaddingPolicy::kSmallestFitting).value(), padded);
    auto back = Unpad(*out);
    ASSERT_TRUE(back.ok()) << size;
    EXPECT_EQ(*back, Content(size)) << size;
  }
}

TEST_F(PaddingTest, LargestOnlyAlwaysUsesTheLargestClass) {
  for (std::size_t size : {0u, 1u, 255u, 256u, 4096u, 16383u}) {
    auto out = Pad(Content(size), PaddingPolicy::kLargestOnly);
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->size(), kLargestPaddingClass);
    EXPECT_EQ(Unpad(*out).value(), Content(size));
  }
}

TEST_F(PaddingTest, PaddingIsOneMarkerByteThenZeros) {
  const Bytes content = {1, 2, 3};
  auto out = Pad(content, PaddingPolicy::kSmallestFitting).value();
  ASSERT_EQ(out.size(), 256u);
  EXPECT_EQ(Bytes(out.begin(), out.begin() + 3), content);
  EXPECT_EQ(out[3], 0x80);
  for (std::size_t i = 4; i < out.size(); ++i) ASSERT_EQ(out[i], 0) << i;
}

TEST_F(PaddingTest, ContentLargerThanTheLargestClassIsRefused) {
  for (auto policy : {PaddingPolicy::kSmallestFitting, PaddingPolicy::kLargestOnly}) {
    auto out = Pad(Bytes(kMaxPaddableBytes + 1, 1), policy);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error().code, Errc::kLimitExceeded);
    EXPECT_FALSE(PaddedSize(16384, policy).ok());
  }
}

TEST_F(PaddingTest, UnknownPolicyIsRefused) {
  auto out = PaddedSize(10, static_cast<PaddingPolicy>(99));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, Errc::kInvalidArgument);
}

TEST_F(PaddingTest, UnpadRefusesSizesThatAreNotAClass) {
  for (std::size_t size : {0u, 1u, 255u, 257u, 512u, 1023u, 1025u, 8192u, 16383u, 16385u, 32768u}) {
    Bytes block(size, 0);
    if (size > 0) block[0] = 0x80;
    auto out = Unpad(block);
    ASSERT_FALSE(out.ok()) << size;
    EXPECT_EQ(out.error().code, Errc::kMalformed);
  }
}

TEST_F(PaddingTest, UnpadRefusesBadPadding) {
  auto good = Pad(Bytes{1, 2, 3}, PaddingPolicy::kSmallestFitting).value();
  // No marker at all.
  EXPECT_FALSE(Unpad(Bytes(256, 0)).ok());
  // A non-zero byte after the marker.
  auto bad = good;
  bad[255] = 0x01;
  EXPECT_FALSE(Unpad(bad).ok());
  // Marker replaced by another value.
  bad = good;
  bad[3] = 0x81;
  EXPECT_FALSE(Unpad(bad).ok());
  // A block of 0xff.
  EXPECT_FALSE(Unpad(Bytes(1024, 0xff)).ok());
}

TEST_F(PaddingTest, MarkerAsLastByteMeansFullBlockContent) {
  Bytes block(256, 0x11);
  block[255] = 0x80;
  auto out = Unpad(block);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->size(), 255u);
}

TEST_F(PaddingTest, MarkerAsFirstByteMeansEmptyContent) {
  Bytes block(4096, 0);
  block[0] = 0x80;
  auto out = Unpad(block);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->empty());
}

TEST_F(PaddingTest, IsPaddingClassKnowsExactlyTheFourClasses) {
  int count = 0;
  for (std::size_t s = 0; s <= 20000; ++s) count += IsPaddingClass(s) ? 1 : 0;
  EXPECT_EQ(count, 4);
  for (std::size_t c : kPaddingClasses) EXPECT_TRUE(IsPaddingClass(c));
}

}  // namespace
}  // namespace rhizome::protocol
