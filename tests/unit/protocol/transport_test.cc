#include "rhizome/protocol/transport.h"

#include <gtest/gtest.h>

#include "rhizome/crypto/sign.h"
#include "wire_test_util.h"

namespace rhizome::protocol {
namespace {

using testing::PbWriter;

class TransportTest : public testing::WireTest {
 protected:
  Id NewId() { return rng_.Array<16>(); }
  crypto::SecretBytes NewKey() { return crypto::SecretBytes::Random(rng_, 32); }
  Bytes Blob(std::size_t n) {
    Bytes b(n);
    rng_.Fill(b);
    return b;
  }
  RelayCommand Command(RelayCommandBody body) { return RelayCommand{NewId(), std::move(body)}; }

  // Every command kind, valid.
  std::vector<RelayCommand> AllCommands() {
    std::vector<RelayCommand> out;
    out.push_back(Command(NewQueue{crypto::Ed25519Generate(rng_).public_key}));
    out.push_back(Command(SetQueueKey{NewId(), NewKey(), rng_.Array<64>()}));
    out.push_back(Command(SendMessage{NewId(), rng_.Array<32>(), Blob(1024 + 72)}));
    out.push_back(Command(Subscribe{NewId(), rng_.Array<64>()}));
    out.push_back(Command(GetMessage{NewId(), rng_.Array<64>()}));
    out.push_back(Command(AckMessage{NewId(), NewId()}));
    out.push_back(Command(DeleteQueue{NewId(), rng_.Array<64>()}));
    out.push_back(Command(CreateBoard{NewId(), NewKey(), NewKey(), 86400}));
    out.push_back(Command(AppendBoard{NewId(), rng_.Array<32>(), Blob(kMaxBlobBytes)}));
    out.push_back(Command(ReadBoard{NewId(), rng_.Array<32>(), 17, kMaxBoardItemsPerRead}));
    return out;
  }

  std::vector<RelayReply> AllReplies() {
    std::vector<RelayReply> out;
    out.push_back({NewId(), RelayOk{}});
    out.push_back({NewId(), QueueCreated{NewId(), NewId()}});
    out.push_back({std::nullopt, QueueMessage{NewId(), NewId(), 1767225600, Blob(300)}});
    out.push_back({NewId(), QueueMessage{NewId(), NewId(), 0, Blob(1)}});
    out.push_back({NewId(), BoardItems{{{1, 10, Blob(5)}, {4, 11, Blob(6)}}, 9}});
    out.push_back({NewId(), BoardItems{{}, 0}});
    out.push_back({NewId(), RelayError{RelayErrorCode::kAuth}});
    out.push_back({std::nullopt, RelayError{RelayErrorCode::kRateLimited}});
    RelayKeyStatement ks;
    ks.serial = 3;
    ks.noise_key = crypto::X25519Generate(rng_).public_key;
    ks.psk = NewKey();
    ks.valid_from = 1767225600;
    ks.signature = rng_.Array<64>();
    out.push_back({std::nullopt, std::move(ks)});
    return out;
  }

  Errc ErrorOf(ByteSpan bytes) {
    auto r = ParseTransportMessage(bytes);
    EXPECT_FALSE(r.ok());
    return r.ok() ? Errc::kInternal : r.error().code;
  }
  // TransportMessage{relay_command{corr_id, <field>: <inner>}}
  static Bytes CommandPb(std::uint32_t field, const PbWriter& inner, std::size_t corr_size = 16) {
    PbWriter c;
    if (corr_size) c.Filled(1, corr_size, 0x0c);
    c.Msg(field, inner);
    return PbWriter().Msg(1, c).bytes();
  }
  static Bytes ReplyPb(std::uint32_t field, const PbWriter& inner, std::size_t corr_size = 16) {
    PbWriter r;
    if (corr_size) r.Filled(1, corr_size, 0x0c);
    r.Msg(field, inner);
    return PbWriter().Msg(2, r).bytes();
  }
};

// Re-serialising the parse result must give the same bytes: a full-fidelity round trip.
void ExpectRoundTrip(const TransportMessage& message) {
  auto bytes = SerializeTransportMessage(message);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_LE(bytes->size(), kMaxTransportMessageBytes);
  auto back = ParseTransportMessage(*bytes);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->index(), message.index());
  EXPECT_EQ(SerializeTransportMessage(*back).value(), *bytes);
}

TEST_F(TransportTest, EveryRelayCommandRoundTrips) {
  for (auto& c : AllCommands()) {
    SCOPED_TRACE(static_cast<int>(CommandCode(c.body)));
    const auto code = CommandCode(c.body);
    TransportMessage m = std::move(c);
    ExpectRoundTrip(m);
    auto back = ParseTransportMessage(SerializeTransportMessage(m).value()).value();
    EXPECT_EQ(CommandCode(std::get<RelayCommand>(back).body), code);
    EXPECT_EQ(std::get<RelayCommand>(back).corr_id, std::get<RelayCommand>(m).corr_id);
  }
}

TEST_F(TransportTest, EveryRelayReplyRoundTrips) {
  for (auto& r : AllReplies()) {
    SCOPED_TRACE(r.body.index());
    TransportMessage m = std::move(r);
    ExpectRoundTrip(m);
  }
}

TEST_F(TransportTest, PeerAndControlMessagesRoundTrip) {
  ExpectRoundTrip(PeerMessage{NewId(), Blob(kMaxBlobBytes)});
  ExpectRoundTrip(PeerAck{NewId()});
  ExpectRoundTrip(Ping{});
  ExpectRoundTrip(Pong{});
  ExpectRoundTrip(Close{CloseReason::kIdleTimeout});
  auto pm = PeerMessage{NewId(), Blob(10)};
  auto back = ParseTransportMessage(SerializeTransportMessage(pm).value()).value();
  EXPECT_EQ(std::get<PeerMessage>(back).delivery_id, pm.delivery_id);
  EXPECT_EQ(std::get<PeerMessage>(back).blob, pm.blob);
}

TEST_F(TransportTest, DocumentedExampleBytesAreExact) {
  // docs/protocol/transport-message.md.
  EXPECT_EQ(SerializeTransportMessage(Close{CloseReason::kIdleTimeout}).value(), (Bytes{0x3a, 0x02, 0x08, 0x03}));
  EXPECT_EQ(SerializeTransportMessage(Ping{}).value(), (Bytes{0x2a, 0x00}));
}

TEST_F(TransportTest, CommandCodesAndEntityIds) {
  auto commands = AllCommands();
  for (std::size_t i = 0; i < commands.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(CommandCode(commands[i].body)), i + 1);
    EXPECT_EQ(CommandEntityId(commands[i].body).size(), i == 0 ? 0u : kIdBytes);
  }
  const auto& send = std::get<SendMessage>(commands[2].body);
  EXPECT_EQ(CommandEntityId(commands[2].body).data(), send.sender_id.data());
}

TEST_F(TransportTest, EmptyMessageIsMalformed) {
  EXPECT_EQ(ErrorOf({}), Errc::kMalformed);
}

TEST_F(TransportTest, UnknownVariantIsUnsupported) {
  // Field 20 is no TransportMessage variant this build knows.
  EXPECT_EQ(ErrorOf(PbWriter().Msg(20, PbWriter()).bytes()), Errc::kUnsupported);
  // A relay command with corr_id and an unknown command field.
  EXPECT_EQ(ErrorOf(CommandPb(40, PbWriter().Varint(1, 1))), Errc::kUnsupported);
  EXPECT_EQ(ErrorOf(ReplyPb(40, PbWriter())), Errc::kUnsupported);
}

TEST_F(TransportTest, OneofNotSetIsMalformed) {
  EXPECT_EQ(ErrorOf(PbWriter().Msg(1, PbWriter().Filled(1, 16, 1)).bytes()), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(PbWriter().Msg(2, PbWriter().Filled(1, 16, 1)).bytes()), Errc::kMalformed);
}

TEST_F(TransportTest, UnknownFieldsBesideAKnownVariantAreIgnored) {
  PbWriter w;
  w.Msg(5, PbWriter()).Len(30, "extension");
  auto m = ParseTransportMessage(w.bytes());
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(std::holds_alternative<Ping>(*m));
  EXPECT_EQ(SerializeTransportMessage(*m).value(), PbWriter().Msg(5, PbWriter()).bytes());
}

TEST_F(TransportTest, CorrIdMustBeSixteenNonZeroBytes) {
  const PbWriter ack = PbWriter().Filled(1, 16, 1).Filled(2, 16, 2);
  EXPECT_TRUE(ParseTransportMessage(CommandPb(7, ack)).ok());
  for (std::size_t size : {0u, 8u, 15u, 17u, 32u}) {
    EXPECT_EQ(ErrorOf(CommandPb(7, ack, size)), Errc::kMalformed) << size;
  }
  PbWriter zero;
  zero.Filled(1, 16, 0).Msg(7, ack);
  EXPECT_EQ(ErrorOf(PbWriter().Msg(1, zero).bytes()), Errc::kMalformed);
}

TEST_F(TransportTest, CommandFieldCatalogue) {
  const Bytes id(16, 1), key(32, 2), sig(64, 3), mac(32, 4), blob(100, 5);
  const Bytes pub = [&] {
    auto k = crypto::Ed25519Generate(rng_).public_key;
    return Bytes(k.begin(), k.end());
  }();
  struct Case {
    const char* what;
    std::uint32_t field;
    PbWriter inner;
    Errc expected;
  };
  const Case cases[] = {
      {"NEW ok", 2, PbWriter().Len(1, pub), Errc{}},
      {"NEW short key", 2, PbWriter().Len(1, Bytes(31, 1)), Errc::kMalformed},
      {"NEW zero key", 2, PbWriter().Len(1, Bytes(32, 0)), Errc::kMalformed},
      {"NEW not a point", 2, PbWriter().Len(1, Bytes(32, 0xff)), Errc::kMalformed},
      {"KEY ok", 3, PbWriter().Len(1, id).Len(2, key).Len(3, sig), Errc{}},
      {"KEY short id", 3, PbWriter().Len(1, Bytes(15, 1)).Len(2, key).Len(3, sig), Errc::kMalformed},
      {"KEY zero id", 3, PbWriter().Len(1, Bytes(16, 0)).Len(2, key).Len(3, sig), Errc::kMalformed},
      {"KEY short key", 3, PbWriter().Len(1, id).Len(2, Bytes(31, 2)).Len(3, sig), Errc::kMalformed},
      {"KEY zero key", 3, PbWriter().Len(1, id).Len(2, Bytes(32, 0)).Len(3, sig), Errc::kMalformed},
      {"KEY no sig", 3, PbWriter().Len(1, id).Len(2, key), Errc::kMalformed},
      {"KEY short sig", 3, PbWriter().Len(1, id).Len(2, key).Len(3, Bytes(63, 3)), Errc::kMalformed},
      {"SEND ok", 4, PbWriter().Len(1, id).Len(2, mac).Len(3, blob), Errc{}},
      {"SEND short mac", 4, PbWriter().Len(1, id).Len(2, Bytes(16, 4)).Len(3, blob), Errc::kMalformed},
      {"SEND empty blob", 4, PbWriter().Len(1, id).Len(2, mac), Errc::kMalformed},
      {"SEND big blob", 4, PbWriter().Len(1, id).Len(2, mac).Len(3, Bytes(kMaxBlobBytes + 1, 5)),
       Errc::kLimitExceeded},
      {"SEND no sender", 4, PbWriter().Len(2, mac).Len(3, blob), Errc::kMalformed},
      {"SUB ok", 5, PbWriter().Len(1, id).Len(2, sig), Errc{}},
      {"SUB long sig", 5, PbWriter().Len(1, id).Len(2, Bytes(65, 3)), Errc::kMalformed},
      {"GET no id", 6, PbWriter().Len(2, sig), Errc::kMalformed},
      {"ACK zero message id", 7, PbWriter().Len(1, id).Len(2, Bytes(16, 0)), Errc::kMalformed},
      {"DEL ok", 8, PbWriter().Len(1, id).Len(2, sig), Errc{}},
      {"DEL no sig", 8, PbWriter().Len(1, id), Errc::kMalformed},
      {"CREATE ok", 9, PbWriter().Len(1, id).Len(2, key).Len(3, mac).Varint(4, 1), Errc{}},
      {"CREATE ttl 0", 9, PbWriter().Len(1, id).Len(2, key).Len(3, mac), Errc::kMalformed},
      {"CREATE ttl max", 9, PbWriter().Len(1, id).Len(2, key).Len(3, mac).Varint(4, kMaxBoardTtlSeconds), Errc{}},
      {"CREATE ttl big", 9,
       PbWriter().Len(1, id).Len(2, key).Len(3, mac).Varint(4, kMaxBoardTtlSeconds + 1), Errc::kMalformed},
      {"CREATE no write key", 9, PbWriter().Len(1, id).Len(2, key).Varint(4, 1), Errc::kMalformed},
      {"APPEND empty blob", 10, PbWriter().Len(1, id).Len(2, mac), Errc::kMalformed},
      {"READ ok", 11, PbWriter().Len(1, id).Len(2, mac).Varint(4, 1), Errc{}},
      {"READ 0 items", 11, PbWriter().Len(1, id).Len(2, mac), Errc::kMalformed},
      {"READ 65 items", 11, PbWriter().Len(1, id).Len(2, mac).Varint(4, 65), Errc::kMalformed},
  };
  for (const auto& c : cases) {
    auto r = ParseTransportMessage(CommandPb(c.field, c.inner));
    if (c.expected == Errc{}) {
      EXPECT_TRUE(r.ok()) << c.what << ": " << r.error().message;
    } else {
      ASSERT_FALSE(r.ok()) << c.what;
      EXPECT_EQ(r.error().code, c.expected) << c.what;
    }
  }
}

TEST_F(TransportTest, ReplyFieldCatalogue) {
  const Bytes id(16, 1), id2(16, 2), blob(10, 5);
  struct Case {
    const char* what;
    Bytes bytes;
    Errc expected;
  };
  PbWriter many;
  for (std::size_t i = 1; i <= kMaxBoardItemsPerRead + 1; ++i) {
    many.Msg(1, PbWriter().Varint(1, i).Len(3, blob));
  }
  const Case cases[] = {
      {"OK", ReplyPb(2, PbWriter()), Errc{}},
      {"OK without corr", ReplyPb(2, PbWriter(), 0), Errc::kMalformed},
      {"CREATED", ReplyPb(3, PbWriter().Len(1, id).Len(2, id2)), Errc{}},
      {"CREATED same ids", ReplyPb(3, PbWriter().Len(1, id).Len(2, id)), Errc::kMalformed},
      {"CREATED without corr", ReplyPb(3, PbWriter().Len(1, id).Len(2, id2), 0), Errc::kMalformed},
      {"MSG pushed", ReplyPb(4, PbWriter().Len(1, id).Len(2, id2).Len(4, blob), 0), Errc{}},
      {"MSG empty blob", ReplyPb(4, PbWriter().Len(1, id).Len(2, id2)), Errc::kMalformed},
      {"MSG short id", ReplyPb(4, PbWriter().Len(1, Bytes(8, 1)).Len(2, id2).Len(4, blob)), Errc::kMalformed},
      {"ITEMS descending", ReplyPb(5, PbWriter().Msg(1, PbWriter().Varint(1, 2).Len(3, blob))
                                               .Msg(1, PbWriter().Varint(1, 1).Len(3, blob))
                                               .Varint(2, 2)),
       Errc::kMalformed},
      {"ITEMS seq 0", ReplyPb(5, PbWriter().Msg(1, PbWriter().Len(3, blob))), Errc::kMalformed},
      {"ITEMS cursor behind", ReplyPb(5, PbWriter().Msg(1, PbWriter().Varint(1, 5).Len(3, blob)).Varint(2, 4)),
       Errc::kMalformed},
      {"ITEMS empty blob", ReplyPb(5, PbWriter().Msg(1, PbWriter().Varint(1, 5)).Varint(2, 5)), Errc::kMalformed},
      {"ITEMS too many", ReplyPb(5, PbWriter(many).Varint(2, 100)), Errc::kLimitExceeded},
      {"ERR unknown code kept", ReplyPb(6, PbWriter().Varint(1, 999)), Errc{}},
      {"ERR code 0", ReplyPb(6, PbWriter()), Errc::kMalformed},
      {"ERR negative code", ReplyPb(6, PbWriter().Varint(1, ~std::uint64_t{0})), Errc::kMalformed},
      {"KEYSTMT with corr", ReplyPb(7, PbWriter().Varint(1, 1).Filled(2, 32, 1).Filled(5, 64, 1)),
       Errc::kMalformed},
      {"KEYSTMT ok", ReplyPb(7, PbWriter().Varint(1, 1).Filled(2, 32, 1).Filled(5, 64, 1), 0), Errc{}},
      {"KEYSTMT serial 0", ReplyPb(7, PbWriter().Filled(2, 32, 1).Filled(5, 64, 1), 0), Errc::kMalformed},
      {"KEYSTMT zero psk", ReplyPb(7, PbWriter().Varint(1, 1).Filled(2, 32, 1).Filled(3, 32, 0).Filled(5, 64, 1), 0),
       Errc::kMalformed},
      {"KEYSTMT short psk", ReplyPb(7, PbWriter().Varint(1, 1).Filled(2, 32, 1).Filled(3, 16, 1).Filled(5, 64, 1), 0),
       Errc::kMalformed},
      {"KEYSTMT no sig", ReplyPb(7, PbWriter().Varint(1, 1).Filled(2, 32, 1), 0), Errc::kMalformed},
  };
  for (const auto& c : cases) {
    auto r = ParseTransportMessage(c.bytes);
    if (c.expected == Errc{}) {
      EXPECT_TRUE(r.ok()) << c.what << ": " << r.error().message;
    } else {
      ASSERT_FALSE(r.ok()) << c.what;
      EXPECT_EQ(r.error().code, c.expected) << c.what;
    }
  }
}

TEST_F(TransportTest, UnknownErrorCodeAndCloseReasonAreKept) {
  auto e = ParseTransportMessage(ReplyPb(6, PbWriter().Varint(1, 999)));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(static_cast<std::uint32_t>(std::get<RelayError>(std::get<RelayReply>(*e).body).code), 999u);
  auto c = ParseTransportMessage(PbWriter().Msg(7, PbWriter().Varint(1, 77)).bytes());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(static_cast<std::uint32_t>(std::get<Close>(*c).reason), 77u);
  EXPECT_EQ(ErrorOf(PbWriter().Msg(7, PbWriter()).bytes()), Errc::kMalformed);
}

TEST_F(TransportTest, PeerMessageCatalogue) {
  EXPECT_EQ(ErrorOf(PbWriter().Msg(3, PbWriter().Filled(1, 16, 1)).bytes()), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(PbWriter().Msg(3, PbWriter().Filled(1, 16, 0).Len(2, "x")).bytes()), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(PbWriter().Msg(3, PbWriter().Filled(1, 12, 1).Len(2, "x")).bytes()), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(PbWriter().Msg(3, PbWriter().Filled(1, 16, 1).Len(2, Bytes(kMaxBlobBytes + 1, 1))).bytes()),
            Errc::kLimitExceeded);
  EXPECT_EQ(ErrorOf(PbWriter().Msg(4, PbWriter()).bytes()), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(PbWriter().Msg(4, PbWriter().Filled(1, 16, 0)).bytes()), Errc::kMalformed);
}

TEST_F(TransportTest, EveryTruncationIsRejectedOrDiffers) {
  TransportMessage m = Command(SendMessage{NewId(), rng_.Array<32>(), Blob(50)});
  const Bytes bytes = SerializeTransportMessage(m).value();
  // The command is one length-delimited submessage, so every strict prefix is cut inside it.
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(ParseTransportMessage(ByteSpan(bytes).first(n)).ok()) << n;
  }
}

TEST_F(TransportTest, TrailingGarbageIsRejected) {
  Bytes bytes = SerializeTransportMessage(Ping{}).value();
  bytes.push_back(0x0a);  // a tag with no length
  EXPECT_EQ(ErrorOf(bytes), Errc::kMalformed);
}

TEST_F(TransportTest, OversizeInputIsRejectedBeforeParsing) {
  Bytes big(kMaxTransportMessageBytes + 1, 0);
  EXPECT_EQ(ErrorOf(big), Errc::kLimitExceeded);
}

TEST_F(TransportTest, BoardItemsThatDoNotFitOneFrameAreRefused) {
  BoardItems items;
  for (std::uint64_t i = 1; i <= 4; ++i) items.items.push_back({i, 0, Blob(kMaxBlobBytes)});
  items.next_cursor = 4;
  auto s = SerializeTransportMessage(RelayReply{NewId(), std::move(items)});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kLimitExceeded);
  BoardItems three;
  for (std::uint64_t i = 1; i <= 3; ++i) three.items.push_back({i, 0, Blob(kMaxBlobBytes)});
  three.next_cursor = 3;
  EXPECT_TRUE(SerializeTransportMessage(RelayReply{NewId(), std::move(three)}).ok());
}

TEST_F(TransportTest, SerializeRefusesInvalidMessages) {
  EXPECT_FALSE(SerializeTransportMessage(Command(SendMessage{NewId(), {}, {}})).ok());
  EXPECT_FALSE(SerializeTransportMessage(RelayCommand{Id{}, AckMessage{NewId(), NewId()}}).ok());
  EXPECT_FALSE(SerializeTransportMessage(Command(SetQueueKey{NewId(), crypto::SecretBytes(), {}})).ok());
  EXPECT_FALSE(SerializeTransportMessage(RelayReply{std::nullopt, RelayOk{}}).ok());
  EXPECT_FALSE(SerializeTransportMessage(Close{static_cast<CloseReason>(0)}).ok());
  EXPECT_FALSE(SerializeTransportMessage(PeerAck{}).ok());
}

TEST_F(TransportTest, AuthMessageLayoutIsAsDocumented) {
  Id corr;
  for (std::size_t i = 0; i < corr.size(); ++i) corr[i] = static_cast<std::uint8_t>(0xc0 + i);
  const Bytes h(64, 0xab);
  Id entity;
  for (std::size_t i = 0; i < entity.size(); ++i) entity[i] = static_cast<std::uint8_t>(i + 1);
  auto msg = RelayAuthMessage(h, corr, entity, RelayCommandCode::kSend);
  ASSERT_TRUE(msg.ok());
  Bytes expected;
  Append(expected, AsBytes("rhizome/v1/relay-auth"));
  expected.push_back(3);
  expected.push_back(64);
  Append(expected, h);
  Append(expected, corr);
  expected.push_back(16);
  Append(expected, entity);
  EXPECT_EQ(*msg, expected);
  // NEW has no entity: a zero length byte and nothing after it.
  auto new_msg = RelayAuthMessage(h, corr, {}, RelayCommandCode::kNew).value();
  EXPECT_EQ(new_msg.back(), 0);
  EXPECT_EQ(new_msg.size(), 21u + 1 + 1 + 64 + 16 + 1);
  // Distinct commands, connections and corr ids give distinct messages.
  EXPECT_NE(RelayAuthMessage(h, corr, entity, RelayCommandCode::kSub).value(), *msg);
  EXPECT_NE(RelayAuthMessage(Bytes(64, 0xac), corr, entity, RelayCommandCode::kSend).value(), *msg);
  EXPECT_FALSE(RelayAuthMessage({}, corr, entity, RelayCommandCode::kSend).ok());
  EXPECT_FALSE(RelayAuthMessage(Bytes(65, 1), corr, entity, RelayCommandCode::kSend).ok());
}

TEST_F(TransportTest, KeyStatementVerifiesOnlyUnchanged) {
  auto relay_key = crypto::Ed25519Generate(rng_);
  RelayKeyStatement ks;
  ks.serial = 2;
  ks.noise_key = crypto::X25519Generate(rng_).public_key;
  ks.psk = NewKey();
  ks.valid_from = 1767225600;
  ks.signature = crypto::Ed25519Sign(relay_key.secret_key, RelayKeyStatementMessage(ks)).value();
  EXPECT_TRUE(VerifyRelayKeyStatement(ks, relay_key.public_key).ok());
  // It survives the wire.
  TransportMessage m = RelayReply{std::nullopt, std::move(ks)};
  auto back = ParseTransportMessage(SerializeTransportMessage(m).value()).value();
  auto& got = std::get<RelayKeyStatement>(std::get<RelayReply>(back).body);
  EXPECT_TRUE(VerifyRelayKeyStatement(got, relay_key.public_key).ok());
  // Any change breaks it.
  got.serial += 1;
  EXPECT_EQ(VerifyRelayKeyStatement(got, relay_key.public_key).error().code, Errc::kAuthenticationFailed);
  got.serial -= 1;
  got.psk = crypto::SecretBytes();
  EXPECT_FALSE(VerifyRelayKeyStatement(got, relay_key.public_key).ok());
  EXPECT_EQ(VerifyRelayKeyStatement(got, Bytes(31, 1)).error().code, Errc::kInvalidArgument);
  auto other = crypto::Ed25519Generate(rng_);
  EXPECT_FALSE(VerifyRelayKeyStatement(got, other.public_key).ok());
}

}  // namespace
}  // namespace rhizome::protocol
