#include "rhizome/protocol/envelope.h"

#include <gtest/gtest.h>

#include "rhizome/crypto/hash.h"
#include "rhizome/protocol/padding.h"
#include "test_support.h"
#include "wire_test_util.h"

namespace rhizome::protocol {
namespace {

using testing::PbWriter;

class EnvelopeTest : public testing::WireTest {
 protected:
  // A valid envelope written by hand from docs/protocol/envelope.md.
  static PbWriter Valid() {
    PbWriter w;
    w.Varint(1, 1)                 // version
        .Filled(2, 16, 0x11)       // message_id
        .Varint(3, 7)              // seq
        .Filled(4, 32, 0x22)       // prev_hash
        .Varint(5, 1)              // type TEXT
        .Varint(6, 1700000000000)  // sent_at_ms
        .Len(7, "hello");          // body
    return w;
  }
  static Errc ErrorOf(ByteSpan bytes) {
    auto r = ParseEnvelope(bytes);
    EXPECT_FALSE(r.ok());
    return r.ok() ? Errc::kInternal : r.error().code;
  }
};

TEST_F(EnvelopeTest, RoundTrips) {
  for (std::uint64_t seq : {1u, 2u, 1000u}) {
    auto e = testing::SampleEnvelope(rng_, seq);
    auto bytes = SerializeEnvelope(e);
    ASSERT_TRUE(bytes.ok());
    auto back = ParseEnvelope(*bytes);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, e);
  }
}

TEST_F(EnvelopeTest, HandWrittenEnvelopeParsesAsDocumented) {
  auto e = ParseEnvelope(Valid().bytes());
  ASSERT_TRUE(e.ok()) << e.error().message;
  Id expected_id;
  expected_id.fill(0x11);
  EXPECT_EQ(e->message_id, expected_id);
  EXPECT_EQ(e->seq, 7u);
  ASSERT_TRUE(e->prev_hash.has_value());
  EXPECT_EQ((*e->prev_hash)[31], 0x22);
  EXPECT_EQ(e->type, EnvelopeType::kText);
  EXPECT_EQ(e->sent_at_ms, 1700000000000u);
  EXPECT_EQ(testing::ToString(e->body), "hello");
  // Our serialiser writes exactly the same bytes (fields in number order).
  EXPECT_EQ(SerializeEnvelope(*e).value(), Valid().bytes());
}

TEST_F(EnvelopeTest, DocumentedExampleBytesAreExact) {
  // docs/protocol/envelope.md, "Example".
  const Bytes doc = testing::Hex(
      "0801" "1210" "11111111111111111111111111111111" "1801" "2801" "3080d095ffbc31"
      "3a0568656c6c6f");
  Envelope e;
  e.message_id.fill(0x11);
  e.seq = 1;
  e.type = EnvelopeType::kText;
  e.sent_at_ms = 1700000000000;
  e.body = Bytes{'h', 'e', 'l', 'l', 'o'};
  EXPECT_EQ(SerializeEnvelope(e).value(), doc);
  EXPECT_EQ(ParseEnvelope(doc).value(), e);
}

TEST_F(EnvelopeTest, EveryTruncationIsRejectedOrLosesAField) {
  // Protobuf is not self-delimiting: a cut exactly between two fields can
  // leave a valid, shorter envelope (in transit the AEAD prevents that). A cut
  // anywhere else is an error; no cut ever gives back the original.
  const auto original = testing::SampleEnvelope(rng_);
  const Bytes bytes = SerializeEnvelope(original).value();
  int accepted = 0;
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto r = ParseEnvelope(ByteSpan(bytes).first(n));
    if (r.ok()) {
      ++accepted;
      EXPECT_NE(*r, original) << n;
    }
  }
  // Only the cuts after type (field 5) and after sent_at_ms (field 6) are whole envelopes.
  EXPECT_EQ(accepted, 2);
}

TEST_F(EnvelopeTest, EachFieldWrongIsMalformed) {
  const auto base = [] {
    return PbWriter().Varint(1, 1).Filled(2, 16, 0x11).Varint(3, 7).Filled(4, 32, 0x22).Varint(5, 1);
  };
  // Missing version.
  EXPECT_EQ(ErrorOf(PbWriter().Filled(2, 16, 1).Varint(3, 1).Varint(5, 1).bytes()), Errc::kMalformed);
  // message_id: missing, 15, 17, 32 bytes, all zero.
  for (std::size_t size : {0u, 15u, 17u, 32u}) {
    auto w = PbWriter().Varint(1, 1).Filled(2, size, 1).Varint(3, 1).Varint(5, 1);
    EXPECT_EQ(ErrorOf(w.bytes()), Errc::kMalformed) << size;
  }
  EXPECT_EQ(ErrorOf(PbWriter().Varint(1, 1).Filled(2, 16, 0).Varint(3, 1).Varint(5, 1).bytes()),
            Errc::kMalformed);
  // seq 0.
  EXPECT_EQ(ErrorOf(PbWriter().Varint(1, 1).Filled(2, 16, 1).Varint(3, 0).Varint(5, 1).bytes()),
            Errc::kMalformed);
  // prev_hash: wrong sizes; present with seq 1; absent with seq > 1.
  for (std::size_t size : {1u, 16u, 31u, 33u, 64u}) {
    auto w = PbWriter().Varint(1, 1).Filled(2, 16, 1).Varint(3, 2).Filled(4, size, 2).Varint(5, 1);
    EXPECT_EQ(ErrorOf(w.bytes()), Errc::kMalformed) << size;
  }
  EXPECT_EQ(ErrorOf(PbWriter().Varint(1, 1).Filled(2, 16, 1).Varint(3, 1).Filled(4, 32, 2).Varint(5, 1).bytes()),
            Errc::kMalformed);
  EXPECT_EQ(ErrorOf(PbWriter().Varint(1, 1).Filled(2, 16, 1).Varint(3, 2).Varint(5, 1).bytes()),
            Errc::kMalformed);
  // type: missing (0), negative.
  EXPECT_EQ(ErrorOf(PbWriter().Varint(1, 1).Filled(2, 16, 1).Varint(3, 1).bytes()), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(base().Varint(5, ~std::uint64_t{0}).bytes()), Errc::kMalformed);
  // A field with the wrong wire type (message_id as varint).
  EXPECT_EQ(ErrorOf(PbWriter().Varint(1, 1).Varint(2, 5).Varint(3, 1).Varint(5, 1).bytes()),
            Errc::kMalformed);
}

TEST_F(EnvelopeTest, UnknownTypeIsKeptForForwardCompatibility) {
  auto e = ParseEnvelope(PbWriter().Varint(1, 1).Filled(2, 16, 1).Varint(3, 1).Varint(5, 4242).bytes());
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(static_cast<std::uint32_t>(e->type), 4242u);
  EXPECT_FALSE(IsKnownEnvelopeType(e->type));
  EXPECT_TRUE(IsKnownEnvelopeType(EnvelopeType::kGroupControl));
  // And it survives a round trip.
  EXPECT_EQ(ParseEnvelope(SerializeEnvelope(*e).value()).value(), *e);
}

TEST_F(EnvelopeTest, NewerVersionIsUnsupported) {
  auto w = PbWriter().Varint(1, 2).Filled(2, 16, 1).Varint(3, 1).Varint(5, 1);
  EXPECT_EQ(ErrorOf(w.bytes()), Errc::kUnsupported);
}

TEST_F(EnvelopeTest, UnknownFieldsAreIgnoredAndNotReserialised) {
  PbWriter w = Valid();
  w.Len(99, "from the future").Varint(100, 5);
  auto e = ParseEnvelope(w.bytes());
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(SerializeEnvelope(*e).value(), Valid().bytes());
}

TEST_F(EnvelopeTest, OversizeInputIsRejectedBeforeParsing) {
  Bytes big = Valid().bytes();
  big.resize(kMaxEnvelopeBytes + 1, 0);  // trailing zero bytes would not even parse
  auto r = ParseEnvelope(big);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kLimitExceeded);
}

TEST_F(EnvelopeTest, BodyLimitIsEnforcedBothWays) {
  auto e = testing::SampleEnvelope(rng_);
  e.body.assign(kMaxEnvelopeBodyBytes + 1, 'x');
  auto s = SerializeEnvelope(e);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kLimitExceeded);
  auto w = PbWriter().Varint(1, 1).Filled(2, 16, 1).Varint(3, 1).Varint(5, 1).Len(
      7, Bytes(kMaxEnvelopeBodyBytes + 1, 'x'));
  EXPECT_EQ(ErrorOf(w.bytes()), Errc::kLimitExceeded);
}

TEST_F(EnvelopeTest, LargestEnvelopeFitsOnePaddedBlock) {
  Envelope e = testing::SampleEnvelope(rng_);
  e.seq = ~std::uint64_t{0};
  e.sent_at_ms = ~std::uint64_t{0};
  e.type = static_cast<EnvelopeType>(0x7fffffff);
  e.body.assign(kMaxEnvelopeBodyBytes, 0xff);
  auto bytes = SerializeEnvelope(e);
  ASSERT_TRUE(bytes.ok());
  EXPECT_LE(bytes->size(), kMaxEnvelopeBytes);
  auto padded = Pad(*bytes, PaddingPolicy::kSmallestFitting);
  ASSERT_TRUE(padded.ok());
  EXPECT_EQ(padded->size(), kLargestPaddingClass);
  EXPECT_EQ(ParseEnvelope(Unpad(*padded).value()).value(), e);
}

TEST_F(EnvelopeTest, TrailingGarbageIsRejected) {
  Bytes bytes = Valid().bytes();
  bytes.push_back(0xff);  // a lone tag byte with no value
  EXPECT_EQ(ErrorOf(bytes), Errc::kMalformed);
}

TEST_F(EnvelopeTest, SerializeRefusesInvalidEnvelopes) {
  auto e = testing::SampleEnvelope(rng_, 1);
  e.prev_hash = Hash{};
  EXPECT_FALSE(SerializeEnvelope(e).ok());
  e = testing::SampleEnvelope(rng_, 2);
  e.prev_hash.reset();
  EXPECT_FALSE(SerializeEnvelope(e).ok());
  e = testing::SampleEnvelope(rng_);
  e.message_id = {};
  EXPECT_FALSE(SerializeEnvelope(e).ok());
  e = testing::SampleEnvelope(rng_);
  e.type = static_cast<EnvelopeType>(0);
  EXPECT_FALSE(SerializeEnvelope(e).ok());
}

TEST_F(EnvelopeTest, DigestIsDomainSeparatedBlake2b) {
  const Bytes bytes = Valid().bytes();
  const Hash a = EnvelopeDigest(bytes);
  EXPECT_EQ(a, EnvelopeDigest(bytes));
  Bytes changed = bytes;
  changed.back() ^= 1;
  EXPECT_NE(a, EnvelopeDigest(changed));
  // Not the plain hash of the bytes.
  EXPECT_NE(a, crypto::Blake2b256(bytes));
}

}  // namespace
}  // namespace rhizome::protocol
