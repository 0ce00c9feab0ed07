#include "rhizome/protocol/frame.h"

#include <gtest/gtest.h>

#include <vector>

namespace rhizome::protocol {
namespace {

Bytes Body(std::size_t size, std::uint8_t seed) {
  Bytes b(size);
  for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<std::uint8_t>(seed + i * 7);
  return b;
}

// Three frames of different sizes, back to back.
std::vector<Bytes> SampleBodies() { return {Body(1, 1), Body(300, 2), Body(17, 3)}; }

Bytes Encode(const std::vector<Bytes>& bodies) {
  Bytes stream;
  for (const auto& b : bodies) EXPECT_TRUE(AppendFrame(stream, b).ok());
  return stream;
}

std::vector<Bytes> Drain(FrameDecoder& decoder) {
  std::vector<Bytes> out;
  while (auto f = decoder.Next()) out.push_back(std::move(*f));
  return out;
}

TEST(FrameEncoding, LengthPrefixIsTwoBytesBigEndian) {
  auto frame = EncodeFrame(Body(0x0102, 9));
  ASSERT_TRUE(frame.ok());
  ASSERT_EQ(frame->size(), 2u + 0x0102u);
  EXPECT_EQ((*frame)[0], 0x01);
  EXPECT_EQ((*frame)[1], 0x02);
  EXPECT_EQ(Bytes(frame->begin() + 2, frame->end()), Body(0x0102, 9));
}

TEST(FrameEncoding, MaximalFrameIsAccepted) {
  auto frame = EncodeFrame(Bytes(kMaxFrameBytes, 0xaa));
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ((*frame)[0], 0xff);
  EXPECT_EQ((*frame)[1], 0xff);
}

TEST(FrameEncoding, EmptyAndOversizedBodiesAreRefused) {
  Bytes out = {0x55};
  auto empty = AppendFrame(out, {});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, Errc::kInvalidArgument);
  auto big = AppendFrame(out, Bytes(kMaxFrameBytes + 1, 0));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(out, Bytes{0x55});  // unchanged on error
}

TEST(FrameDecoder, YieldsTheSameFramesForEverySplitIntoTwoChunks) {
  const auto bodies = SampleBodies();
  const Bytes stream = Encode(bodies);
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    FrameDecoder decoder;
    ASSERT_TRUE(decoder.Feed(ByteSpan(stream).first(split)).ok()) << split;
    auto got = Drain(decoder);
    ASSERT_TRUE(decoder.Feed(ByteSpan(stream).subspan(split)).ok()) << split;
    auto rest = Drain(decoder);
    got.insert(got.end(), rest.begin(), rest.end());
    EXPECT_EQ(got, bodies) << "split at " << split;
    EXPECT_FALSE(decoder.has_partial_frame());
    EXPECT_EQ(decoder.buffered_bytes(), 0u);
  }
}

TEST(FrameDecoder, YieldsTheSameFramesForEverySplitIntoThreeChunks) {
  const auto bodies = std::vector<Bytes>{Body(2, 1), Body(5, 2), Body(1, 3), Body(3, 4)};
  const Bytes stream = Encode(bodies);
  for (std::size_t a = 0; a <= stream.size(); ++a) {
    for (std::size_t b = a; b <= stream.size(); ++b) {
      FrameDecoder decoder;
      std::vector<Bytes> got;
      for (auto [from, to] : {std::pair{std::size_t{0}, a}, std::pair{a, b},
                              std::pair{b, stream.size()}}) {
        ASSERT_TRUE(decoder.Feed(ByteSpan(stream).subspan(from, to - from)).ok());
        auto part = Drain(decoder);
        got.insert(got.end(), part.begin(), part.end());
      }
      EXPECT_EQ(got, bodies) << a << "," << b;
    }
  }
}

TEST(FrameDecoder, AcceptsOneByteAtATime) {
  const auto bodies = SampleBodies();
  const Bytes stream = Encode(bodies);
  FrameDecoder decoder;
  std::vector<Bytes> got;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    ASSERT_TRUE(decoder.Feed(ByteSpan(stream).subspan(i, 1)).ok());
    auto part = Drain(decoder);
    got.insert(got.end(), part.begin(), part.end());
    EXPECT_EQ(decoder.has_partial_frame(), i + 1 != 3 && i + 1 != 305 && i + 1 != stream.size());
  }
  EXPECT_EQ(got, bodies);
}

TEST(FrameDecoder, ManyFramesInOneChunkComeOutInOrder) {
  std::vector<Bytes> bodies;
  for (int i = 0; i < 200; ++i) bodies.push_back(Body(static_cast<std::size_t>(1 + i % 40), static_cast<std::uint8_t>(i)));
  const Bytes stream = Encode(bodies);
  FrameDecoder decoder;
  ASSERT_TRUE(decoder.Feed(stream).ok());
  EXPECT_EQ(Drain(decoder), bodies);
}

TEST(FrameDecoder, MaximalFrameSplitInHalfIsDelivered) {
  const Bytes body(kMaxFrameBytes, 0x42);
  const Bytes stream = EncodeFrame(body).value();
  FrameDecoder decoder;
  ASSERT_TRUE(decoder.Feed(ByteSpan(stream).first(30000)).ok());
  EXPECT_FALSE(decoder.Next().has_value());
  EXPECT_TRUE(decoder.has_partial_frame());
  ASSERT_TRUE(decoder.Feed(ByteSpan(stream).subspan(30000)).ok());
  auto frame = decoder.Next();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(*frame, body);
}

TEST(FrameDecoder, OversizedLengthPrefixIsRejected) {
  FrameDecoder decoder(FrameDecoderLimits{.max_frame_bytes = 1024});
  // Only the two prefix bytes arrive: the decoder must not wait for the body.
  const Bytes prefix = {0x04, 0x01};  // 1025
  auto status = decoder.Feed(prefix);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, Errc::kLimitExceeded);
  EXPECT_TRUE(decoder.failed());
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameDecoder, OversizedLengthPrefixIsRejectedWhenItsSecondByteArrives) {
  FrameDecoder decoder(FrameDecoderLimits{.max_frame_bytes = 100});
  const Bytes stream = Encode({Body(3, 1)});
  ASSERT_TRUE(decoder.Feed(stream).ok());
  ASSERT_TRUE(decoder.Feed(Bytes{0x00}).ok());
  EXPECT_FALSE(decoder.Feed(Bytes{0x65}).ok());  // 101 > 100
  EXPECT_FALSE(decoder.Next().has_value());      // failed: nothing more is delivered
}

TEST(FrameDecoder, LimitOfExactlyTheFrameSizeAccepts) {
  FrameDecoder decoder(FrameDecoderLimits{.max_frame_bytes = 100});
  ASSERT_TRUE(decoder.Feed(Encode({Body(100, 1)})).ok());
  EXPECT_EQ(decoder.Next(), Body(100, 1));
}

TEST(FrameDecoder, ZeroLengthFrameIsAProtocolError) {
  FrameDecoder decoder;
  auto status = decoder.Feed(Bytes{0x00, 0x00});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, Errc::kMalformed);
}

TEST(FrameDecoder, ZeroLengthFrameAfterValidFramesFailsTheDecoder) {
  FrameDecoder decoder;
  Bytes stream = Encode({Body(4, 1)});
  stream.push_back(0);
  stream.push_back(0);
  EXPECT_FALSE(decoder.Feed(stream).ok());
  EXPECT_FALSE(decoder.Next().has_value());
}

TEST(FrameDecoder, StaysFailedAfterAnError) {
  FrameDecoder decoder(FrameDecoderLimits{.max_frame_bytes = 10});
  auto first = decoder.Feed(Bytes{0xff, 0xff});
  ASSERT_FALSE(first.ok());
  // Even perfectly valid input is refused from now on, with the same error.
  auto again = decoder.Feed(Encode({Body(3, 1)}));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, first.error().code);
  EXPECT_STREQ(again.error().message, first.error().message);
  EXPECT_FALSE(decoder.Next().has_value());
  EXPECT_TRUE(decoder.failed());
  EXPECT_FALSE(decoder.status().ok());
}

TEST(FrameDecoder, BufferedBytesAboveTheLimitAreRejected) {
  FrameDecoder decoder(FrameDecoderLimits{.max_frame_bytes = 100, .max_buffered_bytes = 300});
  const Bytes stream = Encode({Body(100, 1), Body(100, 2), Body(100, 3)});  // 306 bytes
  auto status = decoder.Feed(stream);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, Errc::kLimitExceeded);
}

TEST(FrameDecoder, UndrainedFramesCountTowardsTheBufferLimit) {
  FrameDecoder decoder(FrameDecoderLimits{.max_frame_bytes = 100, .max_buffered_bytes = 250});
  const Bytes one = Encode({Body(100, 1)});
  ASSERT_TRUE(decoder.Feed(one).ok());
  ASSERT_TRUE(decoder.Feed(one).ok());
  EXPECT_EQ(decoder.buffered_bytes(), 204u);
  EXPECT_FALSE(decoder.Feed(one).ok());  // 306 > 250 without draining
}

TEST(FrameDecoder, DrainingBetweenFeedsKeepsUnderTheBufferLimit) {
  FrameDecoder decoder(FrameDecoderLimits{.max_frame_bytes = 100, .max_buffered_bytes = 250});
  const Bytes one = Encode({Body(100, 1)});
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(decoder.Feed(one).ok());
    ASSERT_TRUE(decoder.Next().has_value());
  }
}

TEST(FrameDecoder, LimitsAreClampedToSaneValues) {
  FrameDecoder decoder(FrameDecoderLimits{.max_frame_bytes = 0, .max_buffered_bytes = 0});
  EXPECT_EQ(decoder.limits().max_frame_bytes, kMinFrameBytes);
  EXPECT_EQ(decoder.limits().max_buffered_bytes, kMinFrameBytes + kFrameHeaderBytes);
  FrameDecoder big(FrameDecoderLimits{.max_frame_bytes = 1u << 20, .max_buffered_bytes = 10});
  EXPECT_EQ(big.limits().max_frame_bytes, kMaxFrameBytes);
  EXPECT_EQ(big.limits().max_buffered_bytes, kMaxFrameBytes + kFrameHeaderBytes);
  // A maximal frame always fits the buffer.
  ASSERT_TRUE(big.Feed(EncodeFrame(Bytes(kMaxFrameBytes, 1)).value()).ok());
  EXPECT_TRUE(big.Next().has_value());
}

TEST(FrameDecoder, PartialFrameIsVisibleAtEndOfStream) {
  FrameDecoder decoder;
  Bytes stream = Encode({Body(10, 1)});
  stream.pop_back();
  ASSERT_TRUE(decoder.Feed(stream).ok());
  EXPECT_FALSE(decoder.Next().has_value());
  EXPECT_TRUE(decoder.has_partial_frame());
  EXPECT_EQ(decoder.buffered_bytes(), stream.size());
}

TEST(FrameDecoder, EmptyFeedIsANoOp) {
  FrameDecoder decoder;
  EXPECT_TRUE(decoder.Feed({}).ok());
  EXPECT_FALSE(decoder.Next().has_value());
  EXPECT_FALSE(decoder.has_partial_frame());
}

}  // namespace
}  // namespace rhizome::protocol
