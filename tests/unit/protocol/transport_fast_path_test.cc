// The relay's per-message frames skip protobuf's objects (transport.h): a
// SEND or an ACK is read by hand when it is encoded exactly as protobuf
// encodes it, an Ok or a QueueMessage reply is written by hand. These tests
// hold both to protobuf's own result: the same bytes out, and for any input
// the same value or the same error in.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "rhizome/protocol/transport.h"
#include "wire_test_util.h"

namespace rhizome::protocol {
namespace {

using testing::PbWriter;

class TransportFastPathTest : public testing::WireTest {
 protected:
  Id NewId() { return rng_.Array<16>(); }
  Bytes Blob(std::size_t n) {
    Bytes b(n);
    rng_.Fill(b);
    return b;
  }
  Bytes Canonical(const TransportMessage& m) {
    auto bytes = internal::SerializeTransportMessageWithProtobuf(m);
    EXPECT_TRUE(bytes.ok());
    return bytes.ok() ? *bytes : Bytes{};
  }
};

// Both parsers give the same answer: the same value (compared through
// protobuf's own encoding of it) or the same error.
void ExpectSameParse(ByteSpan bytes) {
  auto fast = ParseTransportMessage(bytes);
  auto reference = internal::ParseTransportMessageWithProtobuf(bytes);
  ASSERT_EQ(fast.ok(), reference.ok()) << (fast.ok() ? reference.error().message : fast.error().message);
  if (fast.ok()) {
    EXPECT_EQ(internal::SerializeTransportMessageWithProtobuf(*fast).value(),
              internal::SerializeTransportMessageWithProtobuf(*reference).value());
  } else {
    EXPECT_EQ(fast.error().code, reference.error().code);
    EXPECT_EQ(std::string(fast.error().message), std::string(reference.error().message));
  }
}

TEST_F(TransportFastPathTest, OkAndQueueMessageAreWrittenAsProtobufWritesThem) {
  const std::uint64_t times[] = {0, 1, 127, 128, 16383, 16384, 1767225600, (1ull << 35) - 1,
                                 UINT64_MAX};
  const std::size_t blob_sizes[] = {1, 2, 127, 128, 1280, 16383, 16384, kMaxBlobBytes};
  int cases = 0;
  for (bool with_corr : {false, true}) {
    const std::optional<Id> corr = with_corr ? std::optional<Id>(NewId()) : std::nullopt;
    if (with_corr) {
      TransportMessage ok = RelayReply{corr, RelayOk{}};
      EXPECT_EQ(SerializeTransportMessage(ok).value(), Canonical(ok));
      ++cases;
    }
    for (std::uint64_t t : times) {
      for (std::size_t n : blob_sizes) {
        TransportMessage m = RelayReply{corr, QueueMessage{NewId(), NewId(), t, Blob(n)}};
        auto fast = SerializeTransportMessage(m);
        ASSERT_TRUE(fast.ok()) << fast.error().message;
        EXPECT_EQ(*fast, Canonical(m)) << "received_at " << t << ", blob " << n;
        ++cases;
      }
    }
  }
  EXPECT_EQ(cases, 1 + 2 * 9 * 8);
}

TEST_F(TransportFastPathTest, InvalidRepliesFailAsBefore) {
  // Validation comes first on both paths: an empty blob, a missing corr id on an Ok.
  TransportMessage empty_blob = RelayReply{NewId(), QueueMessage{NewId(), NewId(), 5, Bytes{}}};
  TransportMessage ok_without_corr = RelayReply{std::nullopt, RelayOk{}};
  for (const TransportMessage* m : {&empty_blob, &ok_without_corr}) {
    auto fast = SerializeTransportMessage(*m);
    auto reference = internal::SerializeTransportMessageWithProtobuf(*m);
    ASSERT_FALSE(fast.ok());
    ASSERT_FALSE(reference.ok());
    EXPECT_EQ(fast.error().code, reference.error().code);
    EXPECT_EQ(std::string(fast.error().message), std::string(reference.error().message));
  }
}

// The relay serializes every reply into one reused buffer: each call must
// leave exactly that message's bytes in it, whichever path wrote them, and a
// refused message must leave it alone.
TEST_F(TransportFastPathTest, SerializeIntoReplacesTheBufferOrLeavesItOnError) {
  Bytes buffer;
  TransportMessage big = RelayReply{NewId(), QueueMessage{NewId(), NewId(), 7, Blob(kMaxBlobBytes)}};
  ASSERT_TRUE(SerializeTransportMessageInto(big, buffer).ok());
  EXPECT_EQ(buffer, Canonical(big));
  TransportMessage ok = RelayReply{NewId(), RelayOk{}};
  ASSERT_TRUE(SerializeTransportMessageInto(ok, buffer).ok());
  EXPECT_EQ(buffer, Canonical(ok));  // shorter: nothing of the previous one is left
  TransportMessage other = RelayReply{NewId(), QueueCreated{NewId(), NewId()}};  // protobuf's path
  ASSERT_TRUE(SerializeTransportMessageInto(other, buffer).ok());
  EXPECT_EQ(buffer, Canonical(other));
  const Bytes before = buffer;
  TransportMessage invalid = RelayReply{std::nullopt, RelayOk{}};  // an Ok needs its corr id
  EXPECT_FALSE(SerializeTransportMessageInto(invalid, buffer).ok());
  EXPECT_EQ(buffer, before);
  TransportMessage invalid_other = PeerMessage{NewId(), Bytes{}};  // an empty blob
  EXPECT_FALSE(SerializeTransportMessageInto(invalid_other, buffer).ok());
  EXPECT_EQ(buffer, before);
}

TEST_F(TransportFastPathTest, CanonicalSendAndAckParseAsProtobufParsesThem) {
  for (std::size_t n : {std::size_t{1}, std::size_t{127}, std::size_t{128}, std::size_t{1280},
                        std::size_t{16384}, kMaxBlobBytes}) {
    const Bytes send = Canonical(RelayCommand{NewId(), SendMessage{NewId(), rng_.Array<32>(), Blob(n)}});
    ExpectSameParse(send);
    auto parsed = ParseTransportMessage(send);
    ASSERT_TRUE(parsed.ok());
    const auto& c = std::get<SendMessage>(std::get<RelayCommand>(*parsed).body);
    EXPECT_EQ(c.blob.size(), n);
  }
  const Id r = NewId(), m = NewId();
  const Bytes ack = Canonical(RelayCommand{NewId(), AckMessage{r, m}});
  ExpectSameParse(ack);
  auto parsed = ParseTransportMessage(ack);  // kept: `a` refers into it
  ASSERT_TRUE(parsed.ok());
  const auto& a = std::get<AckMessage>(std::get<RelayCommand>(*parsed).body);
  EXPECT_EQ(a.recipient_id, r);
  EXPECT_EQ(a.message_id, m);
  EXPECT_FALSE(a.quiet);
  const Bytes quiet = Canonical(RelayCommand{NewId(), AckMessage{r, m, /*quiet=*/true}});
  ASSERT_EQ(quiet.size(), ack.size() + 2);  // the tag and a 1
  ExpectSameParse(quiet);
  auto parsed_quiet = ParseTransportMessage(quiet);
  ASSERT_TRUE(parsed_quiet.ok());
  const auto& q = std::get<AckMessage>(std::get<RelayCommand>(*parsed_quiet).body);
  EXPECT_EQ(q.recipient_id, r);
  EXPECT_EQ(q.message_id, m);
  EXPECT_TRUE(q.quiet);
}

// Encodings protobuf accepts (or refuses) that are not the canonical one:
// the hand-written reader must step aside for every one of them.
TEST_F(TransportFastPathTest, NonCanonicalEncodingsGetProtobufsAnswer) {
  const Bytes corr(16, 0x0c), id(16, 0x21), mac(32, 0x33), blob(1280, 0x44);
  auto send = [&](const PbWriter& body) {
    return PbWriter().Msg(1, PbWriter().Len(1, corr).Msg(4, body)).bytes();
  };
  std::vector<Bytes> inputs;
  const PbWriter good = PbWriter().Len(1, id).Len(2, mac).Len(3, blob);
  inputs.push_back(send(good));                                                  // canonical
  inputs.push_back(send(PbWriter().Len(2, mac).Len(1, id).Len(3, blob)));        // out of order
  inputs.push_back(send(PbWriter().Len(1, id).Len(1, id).Len(2, mac).Len(3, blob)));  // repeated
  inputs.push_back(send(PbWriter().Len(1, id).Len(2, mac).Len(3, blob).Len(3, Bytes(5, 1))));  // last wins
  inputs.push_back(send(PbWriter().Len(1, id).Len(2, mac).Len(3, blob).Varint(9, 1)));  // unknown
  inputs.push_back(send(PbWriter().Len(1, id).Len(2, mac).Len(3, Bytes{})));     // empty blob field
  inputs.push_back(send(PbWriter().Len(1, id).Len(2, mac)));                     // no blob
  inputs.push_back(send(PbWriter().Len(1, id).Len(2, mac).Len(3, Bytes(kMaxBlobBytes + 1, 7))));
  inputs.push_back(send(PbWriter().Len(1, Bytes(15, 1)).Len(2, mac).Len(3, blob)));  // short id
  inputs.push_back(send(PbWriter().Len(1, id).Len(2, Bytes(31, 1)).Len(3, blob)));   // short mac
  inputs.push_back(send(PbWriter().Len(1, Bytes(16, 0)).Len(2, mac).Len(3, blob)));  // zero id
  // corr id after the command, twice, missing, zero
  inputs.push_back(PbWriter().Msg(1, PbWriter().Msg(4, good).Len(1, corr)).bytes());
  inputs.push_back(PbWriter().Msg(1, PbWriter().Len(1, corr).Len(1, corr).Msg(4, good)).bytes());
  inputs.push_back(PbWriter().Msg(1, PbWriter().Msg(4, good)).bytes());
  inputs.push_back(PbWriter().Msg(1, PbWriter().Len(1, Bytes(16, 0)).Msg(4, good)).bytes());
  // two commands (the oneof's last member wins), an ACK then a SEND
  const PbWriter ack_body = PbWriter().Len(1, id).Len(2, id);
  inputs.push_back(PbWriter().Msg(1, PbWriter().Len(1, corr).Msg(7, ack_body).Msg(4, good)).bytes());
  inputs.push_back(PbWriter().Msg(1, PbWriter().Len(1, corr).Msg(7, ack_body)).bytes());  // canonical ACK
  inputs.push_back(  // an ACK with its fields out of order
      PbWriter().Msg(1, PbWriter().Len(1, corr).Msg(7, PbWriter().Len(2, id).Len(1, id))).bytes());
  // quiet: canonical (true), an explicit false, another true value, a longer
  // varint, twice, before the ids, with a wrong wire type
  auto ack = [&](const PbWriter& body) {
    return PbWriter().Msg(1, PbWriter().Len(1, corr).Msg(7, body)).bytes();
  };
  inputs.push_back(ack(PbWriter().Len(1, id).Len(2, id).Varint(3, 1)));
  inputs.push_back(ack(PbWriter().Len(1, id).Len(2, id).Varint(3, 0)));
  inputs.push_back(ack(PbWriter().Len(1, id).Len(2, id).Varint(3, 2)));
  inputs.push_back(ack(PbWriter().Len(1, id).Len(2, id).Raw(Bytes{0x18, 0x81, 0x00})));
  inputs.push_back(ack(PbWriter().Len(1, id).Len(2, id).Varint(3, 1).Varint(3, 1)));
  inputs.push_back(ack(PbWriter().Varint(3, 1).Len(1, id).Len(2, id)));
  inputs.push_back(ack(PbWriter().Len(1, id).Len(2, id).Len(3, Bytes{1})));
  // the relay command twice, something after it, a reply instead
  Bytes twice = send(good);
  const Bytes once = twice;
  twice.insert(twice.end(), once.begin(), once.end());
  inputs.push_back(twice);
  inputs.push_back(PbWriter().Raw(send(good)).Varint(5, 0).bytes());
  inputs.push_back(PbWriter().Msg(2, PbWriter().Len(1, corr).Msg(2, PbWriter())).bytes());
  // a length varint in a longer form than needed: 0x90 0x80 0x00 for 16
  inputs.push_back(PbWriter()
                       .Msg(1, PbWriter()
                                   .Raw(Bytes{0x0a, 0x90, 0x80, 0x00})
                                   .Raw(corr)
                                   .Msg(4, good))
                       .bytes());
  // too large
  inputs.push_back(Bytes(kMaxTransportMessageBytes + 1, 0x0a));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE(i);
    ExpectSameParse(inputs[i]);
  }
}

// Every truncation, and every byte of a SEND's and an ACK's framing changed
// to a handful of values, gets the same answer from both paths.
TEST_F(TransportFastPathTest, EveryCutAndByteChangeGetsProtobufsAnswer) {
  std::vector<Bytes> originals = {
      Canonical(RelayCommand{NewId(), AckMessage{NewId(), NewId()}}),
      Canonical(RelayCommand{NewId(), AckMessage{NewId(), NewId(), /*quiet=*/true}}),
      Canonical(RelayCommand{NewId(), SendMessage{NewId(), rng_.Array<32>(), Blob(200)}}),
  };
  std::size_t checked = 0;
  for (const Bytes& original : originals) {
    for (std::size_t cut = 0; cut < original.size(); ++cut) {
      ExpectSameParse(ByteSpan(original.data(), cut));
      ++checked;
    }
    // Positions: every byte of the ACK; the SEND's framing and the edges of its fields.
    const std::size_t limit = original.size() < 100 ? original.size() : 90;
    for (std::size_t pos = 0; pos < limit; ++pos) {
      for (std::uint8_t v : {std::uint8_t{0x00}, std::uint8_t{0x01}, std::uint8_t{0x7f},
                             std::uint8_t{0x80}, std::uint8_t{0xff},
                             static_cast<std::uint8_t>(original[pos] ^ 0x08),
                             static_cast<std::uint8_t>(original[pos] + 1),
                             static_cast<std::uint8_t>(original[pos] - 1)}) {
        Bytes changed = original;
        changed[pos] = v;
        ExpectSameParse(changed);
        ++checked;
      }
    }
    Bytes longer = original;
    longer.push_back(0);
    ExpectSameParse(longer);
  }
  EXPECT_GT(checked, 1000u);
}

}  // namespace
}  // namespace rhizome::protocol
