#include "rhizome/protocol/contact_card.h"

#include <gtest/gtest.h>

#include "wire_test_util.h"

namespace rhizome::protocol {
namespace {

using testing::PbWriter;

void ExpectSameCard(const ContactCard& a, const ContactCard& b) {
  EXPECT_EQ(a.display_name, b.display_name);
  EXPECT_EQ(a.identity_key, b.identity_key);
  EXPECT_EQ(a.noise_key, b.noise_key);
  EXPECT_EQ(a.device_certificate, b.device_certificate);
  EXPECT_EQ(a.versions, b.versions);
  ASSERT_EQ(a.queues.size(), b.queues.size());
  for (std::size_t i = 0; i < a.queues.size(); ++i) {
    EXPECT_EQ(a.queues[i].sender_id, b.queues[i].sender_id);
    EXPECT_TRUE(a.queues[i].send_key.ConstantTimeEquals(b.queues[i].send_key));
    EXPECT_EQ(a.queues[i].seal_key, b.queues[i].seal_key);
    EXPECT_EQ(a.queues[i].relay.noise_key, b.queues[i].relay.noise_key);
    EXPECT_EQ(a.queues[i].relay.host, b.queues[i].relay.host);
    EXPECT_TRUE(a.queues[i].relay.psk.ConstantTimeEquals(b.queues[i].relay.psk));
  }
  EXPECT_EQ(a.direct_addresses, b.direct_addresses);
}

// Wire-level pieces, written from docs/protocol/contact-card.md, so each can be broken.
PbWriter RelayPb(const RelayAddress& r) {
  PbWriter w;
  w.Len(1, r.noise_key).Len(2, r.signing_key).Len(3, r.host).Varint(4, r.port).Varint(5, 1);
  return w;
}

class ContactCardTest : public testing::WireTest {
 protected:
  void SetUp() override {
    WireTest::SetUp();
    card_ = testing::SampleCard(rng_);
  }
  // The card's fields with one of them replaced (field number -> raw bytes).
  Bytes CardWith(std::uint32_t replace_field, const PbWriter& replacement) {
    PbWriter w;
    auto field = [&](std::uint32_t n, auto&& write) {
      if (n == replace_field) {
        w.Raw(replacement.bytes());
      } else {
        write();
      }
    };
    field(1, [&] { w.Varint(1, 1); });
    field(2, [&] { w.Len(2, card_.display_name); });
    field(3, [&] { w.Len(3, card_.identity_key); });
    field(4, [&] { w.Len(4, card_.noise_key); });
    field(5, [&] { w.Len(5, card_.device_certificate); });
    field(6, [&] { w.Varint(6, 1); });
    field(7, [&] {
      const auto& q = card_.queues[0];
      w.Msg(7, PbWriter().Msg(1, RelayPb(q.relay)).Len(2, q.sender_id).Len(3, q.send_key.expose()).Len(4, q.seal_key));
    });
    return w.bytes();
  }
  Errc ErrorOf(ByteSpan bytes) {
    auto r = ParseContactCard(bytes);
    EXPECT_FALSE(r.ok());
    return r.ok() ? Errc::kInternal : r.error().code;
  }
  ContactCard card_;
};

TEST_F(ContactCardTest, RoundTrips) {
  auto bytes = SerializeContactCard(card_);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  auto back = ParseContactCard(*bytes);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ExpectSameCard(*back, card_);
}

TEST_F(ContactCardTest, HandWrittenCardParses) {
  auto back = ParseContactCard(CardWith(0, {}));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->display_name, "Ana");
  ASSERT_EQ(back->queues.size(), 1u);
  EXPECT_TRUE(back->queues[0].relay.psk.empty());
  EXPECT_TRUE(back->direct_addresses.empty());
}

TEST_F(ContactCardTest, CardWithoutQueuesOrAddressesIsValid) {
  card_.queues.clear();
  card_.direct_addresses.clear();
  auto back = ParseContactCard(SerializeContactCard(card_).value());
  ASSERT_TRUE(back.ok());
  ExpectSameCard(*back, card_);
}

TEST_F(ContactCardTest, LargestValidCardFitsTheLimit) {
  std::string host;
  while (host.size() + 64 <= 253) host += std::string(63, 'h') + ".";
  host += std::string(253 - host.size(), 'z');
  card_.display_name = std::string(kMaxDisplayNameBytes, 'n');
  card_.versions = {1, 2, 3, 4, 5, 6, 7, 65535};
  card_.queues.clear();
  for (std::size_t i = 0; i < kMaxCardQueues; ++i) {
    auto q = testing::SampleQueue(rng_);
    q.relay.host = host;
    q.relay.port = 65535;
    q.relay.versions = card_.versions;
    card_.queues.push_back(std::move(q));
  }
  card_.direct_addresses.assign(kMaxDirectAddresses, DirectAddress{host, 65535});
  auto bytes = SerializeContactCard(card_);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_LE(bytes->size(), kMaxContactCardBytes);
  EXPECT_TRUE(ParseContactCard(*bytes).ok());
}

TEST_F(ContactCardTest, ForgedDeviceCertificateIsRejected) {
  // Someone else's Noise key under Ana's identity: the certificate no longer binds it.
  card_.noise_key = crypto::X25519Generate(rng_).public_key;
  auto s = SerializeContactCard(card_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kAuthenticationFailed);
  // The same card written by hand is refused by the parser.
  auto r = ParseContactCard(CardWith(4, PbWriter().Len(4, card_.noise_key)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kAuthenticationFailed);
}

TEST_F(ContactCardTest, EveryFlippedCertificateBitIsRejected) {
  for (std::size_t bit = 0; bit < 64 * 8; bit += 7) {
    Signature cert = card_.device_certificate;
    cert[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    auto r = ParseContactCard(CardWith(5, PbWriter().Len(5, cert)));
    ASSERT_FALSE(r.ok()) << bit;
  }
}

TEST_F(ContactCardTest, EachFieldWrongIsRejected) {
  struct Case {
    std::uint32_t field;
    PbWriter replacement;
    Errc expected;
  };
  const Case cases[] = {
      {1, PbWriter(), Errc::kMalformed},                                  // no version
      {1, PbWriter().Varint(1, 2), Errc::kUnsupported},                   // newer version
      {2, PbWriter(), Errc::kMalformed},                                  // no name
      {2, PbWriter().Len(2, std::string(65, 'a')), Errc::kMalformed},     // long name
      {2, PbWriter().Len(2, "a\nb"), Errc::kMalformed},                   // control character
      {2, PbWriter().Len(2, "\xff\xfe"), Errc::kMalformed},               // not UTF-8
      {3, PbWriter().Filled(3, 31, 1), Errc::kMalformed},                 // identity key size
      {3, PbWriter().Filled(3, 33, 1), Errc::kMalformed},
      {3, PbWriter().Filled(3, 32, 0), Errc::kMalformed},                 // all zero
      {4, PbWriter().Filled(4, 16, 1), Errc::kMalformed},                 // noise key size
      {4, PbWriter().Filled(4, 32, 0), Errc::kMalformed},
      {5, PbWriter().Filled(5, 63, 1), Errc::kMalformed},                 // certificate size
      {5, PbWriter().Filled(5, 65, 1), Errc::kMalformed},
      {5, PbWriter(), Errc::kMalformed},
      {6, PbWriter(), Errc::kMalformed},                                  // no versions
      {6, PbWriter().Varint(6, 2), Errc::kUnsupported},                   // only newer
      {6, PbWriter().Varint(6, 0), Errc::kMalformed},
      {6, PbWriter().Varint(6, 70000), Errc::kMalformed},
      {6, PbWriter().Varint(6, 2).Varint(6, 1), Errc::kMalformed},        // not ascending
      {7, PbWriter().Msg(7, PbWriter()), Errc::kMalformed},               // empty queue
      {7, PbWriter().Len(7, "\x0a\x01"), Errc::kMalformed},               // truncated submessage
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ErrorOf(CardWith(c.field, c.replacement)), c.expected) << "field " << c.field;
  }
}

TEST_F(ContactCardTest, QueueFieldsWrongAreRejected) {
  const auto& q = card_.queues[0];
  const PbWriter relay = RelayPb(q.relay);
  const Bytes good_send_key(q.send_key.expose().begin(), q.send_key.expose().end());
  auto queue = [&](const PbWriter& r, ByteSpan sender, ByteSpan send_key, ByteSpan seal) {
    return PbWriter().Msg(7, PbWriter().Msg(1, r).Len(2, sender).Len(3, send_key).Len(4, seal));
  };
  const Bytes id16(16, 3), key32(32, 4);
  EXPECT_TRUE(ParseContactCard(CardWith(7, queue(relay, id16, good_send_key, key32))).ok());
  EXPECT_EQ(ErrorOf(CardWith(7, queue(relay, Bytes(15, 3), key32, key32))), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(CardWith(7, queue(relay, Bytes(16, 0), key32, key32))), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(CardWith(7, queue(relay, id16, Bytes(31, 4), key32))), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(CardWith(7, queue(relay, id16, Bytes(32, 0), key32))), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(CardWith(7, queue(relay, id16, key32, Bytes(33, 4)))), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(CardWith(7, queue(relay, id16, key32, Bytes(32, 0)))), Errc::kMalformed);
  // No relay.
  EXPECT_EQ(ErrorOf(CardWith(7, PbWriter().Msg(7, PbWriter().Len(2, id16).Len(3, key32).Len(4, key32)))),
            Errc::kMalformed);
  // Relay fields wrong.
  const auto relay_with = [&](std::uint32_t skip, const PbWriter& extra) {
    PbWriter r;
    if (skip != 1) r.Len(1, q.relay.noise_key);
    if (skip != 2) r.Len(2, q.relay.signing_key);
    if (skip != 3) r.Len(3, q.relay.host);
    if (skip != 4) r.Varint(4, q.relay.port);
    if (skip != 5) r.Varint(5, 1);
    r.Raw(extra.bytes());
    return r;
  };
  const std::pair<std::uint32_t, PbWriter> relay_cases[] = {
      {1, PbWriter()},
      {1, PbWriter().Filled(1, 31, 1)},
      {1, PbWriter().Filled(1, 32, 0)},
      {2, PbWriter().Filled(2, 32, 0)},
      {2, PbWriter().Filled(2, 32, 0xff)},  // not a curve point
      {3, PbWriter()},
      {3, PbWriter().Len(3, "Relay.Example.org")},  // not canonical
      {3, PbWriter().Len(3, "bad host")},
      {3, PbWriter().Len(3, "[::1]")},
      {4, PbWriter()},
      {4, PbWriter().Varint(4, 65536)},
      {5, PbWriter()},
      {5, PbWriter().Varint(5, 1).Varint(5, 1)},
      {0, PbWriter().Filled(6, 31, 1)},  // psk size
      {0, PbWriter().Filled(6, 32, 0)},  // all-zero psk
  };
  for (const auto& [skip, extra] : relay_cases) {
    auto bytes = CardWith(7, queue(relay_with(skip, extra), id16, key32, key32));
    EXPECT_EQ(ErrorOf(bytes), Errc::kMalformed) << "relay field " << skip;
  }
}

TEST_F(ContactCardTest, TooManyQueuesOrAddressesIsLimitExceeded) {
  auto extra = testing::SampleCard(rng_);
  card_.queues.clear();
  for (std::size_t i = 0; i <= kMaxCardQueues; ++i) card_.queues.push_back(testing::SampleQueue(rng_));
  EXPECT_EQ(SerializeContactCard(card_).error().code, Errc::kLimitExceeded);
  // The parser counts before converting.
  PbWriter w;
  w.Raw(CardWith(7, PbWriter()));
  const auto& q = extra.queues[0];
  for (std::size_t i = 0; i <= kMaxCardQueues; ++i) {
    w.Msg(7, PbWriter().Msg(1, RelayPb(q.relay)).Len(2, q.sender_id).Len(3, q.send_key.expose()).Len(4, q.seal_key));
  }
  EXPECT_EQ(ErrorOf(w.bytes()), Errc::kLimitExceeded);

  PbWriter d;
  d.Raw(CardWith(7, PbWriter()));
  for (std::size_t i = 0; i <= kMaxDirectAddresses; ++i) d.Msg(8, PbWriter().Len(1, "192.0.2.1").Varint(2, 1));
  EXPECT_EQ(ErrorOf(d.bytes()), Errc::kLimitExceeded);
}

TEST_F(ContactCardTest, BadDirectAddressIsRejected) {
  PbWriter base;
  base.Raw(CardWith(7, PbWriter()));
  EXPECT_TRUE(ParseContactCard(PbWriter(base).Msg(8, PbWriter().Len(1, "192.0.2.1").Varint(2, 1)).bytes()).ok());
  EXPECT_EQ(ErrorOf(PbWriter(base).Msg(8, PbWriter().Len(1, "192.0.2.1")).bytes()), Errc::kMalformed);
  EXPECT_EQ(ErrorOf(PbWriter(base).Msg(8, PbWriter().Len(1, "192.0.2.256").Varint(2, 1)).bytes()),
            Errc::kMalformed);
  EXPECT_EQ(ErrorOf(PbWriter(base).Msg(8, PbWriter().Varint(2, 1)).bytes()), Errc::kMalformed);
}

TEST_F(ContactCardTest, EveryTruncationIsRejectedOrLosesAField) {
  const Bytes bytes = SerializeContactCard(card_).value();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto r = ParseContactCard(ByteSpan(bytes).first(n));
    if (r.ok()) {
      // Only a cut between whole fields can parse, and it drops the queue or address.
      EXPECT_LT(r->queues.size() + r->direct_addresses.size(),
                card_.queues.size() + card_.direct_addresses.size())
          << n;
    }
  }
}

TEST_F(ContactCardTest, OversizeInputIsRejectedBeforeParsing) {
  Bytes big = SerializeContactCard(card_).value();
  big.resize(kMaxContactCardBytes + 1, 0);
  EXPECT_EQ(ErrorOf(big), Errc::kLimitExceeded);
}

TEST_F(ContactCardTest, UnknownFieldsAreIgnoredAndNotReserialised) {
  const Bytes canonical = SerializeContactCard(card_).value();
  PbWriter w;
  w.Raw(canonical).Len(77, "future").Varint(78, 1);
  auto back = ParseContactCard(w.bytes());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(SerializeContactCard(*back).value(), canonical);
}

TEST_F(ContactCardTest, CloneIsADeepCopy) {
  auto copy = card_.Clone();
  ExpectSameCard(copy, card_);
  EXPECT_NE(copy.queues[0].send_key.expose().data(), card_.queues[0].send_key.expose().data());
}

}  // namespace
}  // namespace rhizome::protocol
