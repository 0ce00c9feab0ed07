// First contact (DESIGN §6, docs/protocol/first-contact.md): invite, Xpsk1
// contact request, card exchange inside the ratchet, Noise_KK confirmation,
// the stored state, and the attacks the design names (impostors with someone
// else's card, a card that does not match the invite, replayed, tampered and
// expired requests, a wrong invite secret).
//
// The known-answer transcript (tests/vectors/rhizome_first_contact_kat.json)
// is self-generated. Regenerate only after a deliberate format change:
//   RHIZOME_REGENERATE_KAT=1 protocol_unit_tests --gtest_filter='FirstContactKat.*'
#include "rhizome/protocol/first_contact.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "rhizome/crypto/double_ratchet.h"
#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/random.h"
#include "test_support.h"
#include "wire_test_util.h"

namespace rhizome::protocol {
namespace {

using crypto::DeterministicRandom;
using crypto::SecretBytes;
using nlohmann::json;
using rhizome::testing::PbWriter;

constexpr std::uint64_t kNow = 1800000000;
constexpr std::uint64_t kExpires = kNow + 3600;

// One person: an identity and the card it hands out.
struct Person {
  Identity id;
  ContactCard card;
  ContactSelf self() const { return ContactSelf{card, id.noise}; }
};

RelayAddress MakeRelay(crypto::RandomSource& rng, const char* host) {
  RelayAddress a;
  a.noise_key = crypto::X25519Generate(rng).public_key;
  a.signing_key = crypto::Ed25519Generate(rng).public_key;
  a.host = host;
  a.port = 4433;
  a.versions = {1};
  return a;
}

MessageQueue MakeQueue(crypto::RandomSource& rng, const char* host) {
  MessageQueue q;
  q.relay = MakeRelay(rng, host);
  q.sender_id = rng.Array<16>();
  q.send_key = SecretBytes::Random(rng, kSendKeyBytes);
  q.seal_key = crypto::X25519Generate(rng).public_key;
  return q;
}

Person MakePerson(const char* name, crypto::RandomSource& rng) {
  auto id = GenerateIdentity(name, rng);
  EXPECT_TRUE(id.ok());
  Person p{std::move(id).value(), {}};
  p.card.display_name = p.id.display_name;
  p.card.identity_key = p.id.signing.public_key;
  p.card.noise_key = p.id.noise.public_key;
  p.card.device_certificate = p.id.certificate;
  p.card.versions = {1};
  p.card.queues.push_back(MakeQueue(rng, "inbox.example.org"));
  return p;
}

// Someone presenting `victim`'s card without its Noise private key: the
// public half is the victim's, the secret is the impostor's own.
Person Impostor(const Person& victim, crypto::RandomSource& rng) {
  Person p{Identity{victim.id.display_name, crypto::Ed25519Generate(rng),
                    crypto::X25519Generate(rng), victim.id.certificate},
           victim.card.Clone()};
  p.id.noise.public_key = victim.id.noise.public_key;
  return p;
}

bool SameBytes(const SecretBytes& a, const SecretBytes& b) {
  return a.size() == b.size() && std::equal(a.expose().begin(), a.expose().end(), b.expose().begin());
}

void FlipBit(Bytes& b, std::size_t bit) { b[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8)); }

class FirstContact : public ::testing::Test {
 protected:
  void SetUp() override {
    rhizome::testing::InitCryptoOnce();
    alice_.emplace(MakePerson("Alice", rng_a_));
    bob_.emplace(MakePerson("Bob", rng_b_));
    relay_ = MakeRelay(rng_a_, "relay.example.org");
  }

  // The inviter (Alice) makes an invite naming `identity` (her own by default).
  MadeInvite Make(bool multi_use = false, const Person* identity = nullptr) {
    InviteOptions o;
    o.identity_key = (identity ? *identity : *alice_).id.signing.public_key;
    o.expires_at = kExpires;
    o.relay = &relay_;
    o.request_queue_id = rng_a_.Array<16>();
    o.multi_use = multi_use;
    auto made = MakeInvite(o, kNow, rng_a_);
    EXPECT_TRUE(made.ok());
    return std::move(made).value();
  }

  // The acceptor (Bob) reads the code, as a person would paste it.
  Invite ViaCode(const Invite& invite) {
    auto code = FormatInviteCode(invite);
    EXPECT_TRUE(code.ok());
    auto parsed = ParseInviteCode(*code);
    EXPECT_TRUE(parsed.ok());
    return std::move(parsed).value();
  }

  BuiltContactRequest Request(const Invite& invite) {
    auto built = BuildContactRequest(ViaCode(invite), reply_queue_, kNow, rng_b_);
    EXPECT_TRUE(built.ok());
    return std::move(built).value();
  }

  DeterministicRandom rng_a_{101};
  DeterministicRandom rng_b_{202};
  DeterministicRandom rng_m_{303};
  std::optional<Person> alice_, bob_;
  RelayAddress relay_;
  MessageQueue reply_queue_ = MakeQueue(rng_b_, "reply.example.net");
};

// The whole exchange with honest parties, checking every state on the way.
TEST_F(FirstContact, HappyPathEndsConfirmedOnBothSidesAndCarriesMessages) {
  MadeInvite made = Make();
  BuiltContactRequest req = Request(made.invite);
  EXPECT_EQ(req.contact.role(), ContactRole::kAcceptor);
  EXPECT_EQ(req.contact.state(), ContactState::kRequestSent);
  EXPECT_FALSE(req.contact.peer_card().has_value());

  auto opened = OpenContactRequest(made.state, req.request, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  ASSERT_TRUE(RecordOpenedRequest(made.state, opened->request_id).ok());
  EXPECT_TRUE(made.state.consumed());
  PendingContact& a = opened->contact;
  EXPECT_EQ(a.role(), ContactRole::kInviter);
  EXPECT_EQ(a.state(), ContactState::kAwaitingCard);
  EXPECT_EQ(a.handshake_hash(), req.contact.handshake_hash());
  EXPECT_EQ(opened->reply_queue.sender_id, reply_queue_.sender_id);
  EXPECT_TRUE(opened->reply_queue.send_key.ConstantTimeEquals(reply_queue_.send_key));

  PendingContact& b = req.contact;
  auto b1 = b.HandleMessage(opened->reply, bob_->self(), kNow, rng_b_);
  ASSERT_TRUE(b1.ok()) << b1.error().message;
  EXPECT_EQ(b1->state, ContactState::kConfirming);
  ASSERT_TRUE(b.peer_card().has_value());
  EXPECT_EQ(b.peer_card()->identity_key, alice_->card.identity_key);
  EXPECT_FALSE(b.confirmed());

  auto a2 = a.HandleMessage(b1->reply, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(a2.ok()) << a2.error().message;
  EXPECT_EQ(a2->state, ContactState::kConfirmed);
  EXPECT_EQ(a.peer_card()->identity_key, bob_->card.identity_key);
  EXPECT_EQ(a.peer_card()->display_name, "Bob");

  auto b2 = b.HandleMessage(a2->reply, bob_->self(), kNow, rng_b_);
  ASSERT_TRUE(b2.ok()) << b2.error().message;
  EXPECT_EQ(b2->state, ContactState::kConfirmed);
  EXPECT_TRUE(b2->reply.empty());

  // Normal traffic both ways, across DH steps that use the mixed root key.
  for (int round = 0; round < 3; ++round) {
    const std::string text = "round " + std::to_string(round);
    auto m1 = b.Encrypt(AsBytes(text), rng_b_);
    ASSERT_TRUE(m1.ok());
    auto p1 = a.Decrypt(*m1, kNow);
    ASSERT_TRUE(p1.ok()) << round;
    EXPECT_EQ(rhizome::testing::ToString(*p1), text);
    auto m2 = a.Encrypt(AsBytes(text), rng_a_);
    ASSERT_TRUE(m2.ok());
    auto p2 = b.Decrypt(*m2, kNow);
    ASSERT_TRUE(p2.ok()) << round;
  }
  // Both hand over the session.
  auto session = a.TakeSession();
  ASSERT_TRUE(session.ok());
  EXPECT_FALSE(a.TakeSession().ok());
}

// DESIGN §6.4: until KK is done, nothing but first-contact traffic flows.
TEST_F(FirstContact, NothingButConfirmationFlowsBeforeConfirmed) {
  MadeInvite made = Make();
  BuiltContactRequest req = Request(made.invite);
  EXPECT_EQ(req.contact.Encrypt(AsBytes("early"), rng_b_).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(req.contact.Decrypt(Bytes(200, 1), kNow).error().code, Errc::kInvalidArgument);
  EXPECT_FALSE(req.contact.TakeSession().ok());
  auto opened = OpenContactRequest(made.state, req.request, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->contact.Encrypt(AsBytes("early"), rng_a_).error().code,
            Errc::kInvalidArgument);
  auto b1 = req.contact.HandleMessage(opened->reply, bob_->self(), kNow, rng_b_);
  ASSERT_TRUE(b1.ok());
  EXPECT_EQ(req.contact.state(), ContactState::kConfirming);
  EXPECT_EQ(req.contact.Encrypt(AsBytes("early"), rng_b_).error().code, Errc::kInvalidArgument);
}

// An application message overtaking KK message 2 is refused without a state
// change, and decrypts once the contact is confirmed.
TEST_F(FirstContact, ApplicationMessageOvertakingConfirmationWaitsForIt) {
  MadeInvite made = Make();
  BuiltContactRequest req = Request(made.invite);
  auto opened = OpenContactRequest(made.state, req.request, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(opened.ok());
  auto b1 = req.contact.HandleMessage(opened->reply, bob_->self(), kNow, rng_b_);
  ASSERT_TRUE(b1.ok());
  auto a2 = opened->contact.HandleMessage(b1->reply, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(a2.ok());
  auto early = opened->contact.Encrypt(AsBytes("hi Bob"), rng_a_);
  ASSERT_TRUE(early.ok());

  const SecretBytes before = req.contact.Serialize();
  EXPECT_EQ(req.contact.HandleMessage(*early, bob_->self(), kNow, rng_b_).error().code,
            Errc::kMalformed);
  EXPECT_TRUE(SameBytes(before, req.contact.Serialize()));
  ASSERT_TRUE(req.contact.HandleMessage(a2->reply, bob_->self(), kNow, rng_b_).ok());
  auto text = req.contact.Decrypt(*early, kNow);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(rhizome::testing::ToString(*text), "hi Bob");
}

// DESIGN §6.3: the acceptor checks the inviter's card against the per-invite
// fingerprint. Here Alice's invite names Carol's identity, then Alice presents
// her own (valid) card.
TEST_F(FirstContact, InviterCardNotMatchingInviteFingerprintIsRefused) {
  Person carol = MakePerson("Carol", rng_m_);
  MadeInvite made = Make(false, &carol);
  BuiltContactRequest req = Request(made.invite);
  auto opened = OpenContactRequest(made.state, req.request, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(opened.ok());
  auto b1 = req.contact.HandleMessage(opened->reply, bob_->self(), kNow, rng_b_);
  ASSERT_FALSE(b1.ok());
  EXPECT_EQ(b1.error().code, Errc::kAuthenticationFailed);
  EXPECT_STREQ(b1.error().message, "inviter's card does not match the invite");
  EXPECT_EQ(req.contact.state(), ContactState::kFailed);
  EXPECT_EQ(req.contact.failure(), ContactFailure::kCardDoesNotMatchInvite);
  EXPECT_FALSE(req.contact.peer_card().has_value());
  // Failed for good: nothing more is taken.
  EXPECT_EQ(req.contact.HandleMessage(opened->reply, bob_->self(), kNow, rng_b_).error().code,
            Errc::kInvalidArgument);
}

// An impostor accepts Alice's invite and presents Bob's card without Bob's
// Noise private key: Alice cannot confirm, and refuses the contact.
TEST_F(FirstContact, ImpostorAcceptorCannotFinishConfirmation) {
  Person mallory = Impostor(*bob_, rng_m_);
  MadeInvite made = Make();
  auto req = BuildContactRequest(ViaCode(made.invite), reply_queue_, kNow, rng_m_);
  ASSERT_TRUE(req.ok());
  auto opened = OpenContactRequest(made.state, req->request, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(opened.ok());
  auto m1 = req->contact.HandleMessage(opened->reply, mallory.self(), kNow, rng_m_);
  ASSERT_TRUE(m1.ok());  // writing KK message 1 needs no check by the writer
  auto a2 = opened->contact.HandleMessage(m1->reply, alice_->self(), kNow, rng_a_);
  ASSERT_FALSE(a2.ok());
  EXPECT_EQ(a2.error().code, Errc::kAuthenticationFailed);
  EXPECT_STREQ(a2.error().message, "contact confirmation failed");
  EXPECT_EQ(opened->contact.state(), ContactState::kFailed);
  EXPECT_EQ(opened->contact.failure(), ContactFailure::kConfirmationFailed);
  EXPECT_EQ(opened->contact.Encrypt(AsBytes("x"), rng_a_).error().code, Errc::kInvalidArgument);
  EXPECT_FALSE(req->contact.confirmed());
}

// An impostor hands Bob an invite whose fingerprint names Alice (her identity
// key is public) and presents Alice's card without her Noise private key. The
// fingerprint check passes, but KK does not: the impostor's own client cannot
// read KK message 1, and Bob refuses the best reply it could forge.
TEST_F(FirstContact, ImpostorInviterCannotFinishConfirmation) {
  Person mallory = Impostor(*alice_, rng_m_);
  InviteOptions o;
  o.identity_key = alice_->id.signing.public_key;
  o.expires_at = kExpires;
  o.relay = &relay_;
  o.request_queue_id = rng_m_.Array<16>();
  auto made = MakeInvite(o, kNow, rng_m_);
  ASSERT_TRUE(made.ok());
  BuiltContactRequest req = Request(made->invite);
  auto opened = OpenContactRequest(made->state, req.request, mallory.self(), kNow, rng_m_);
  ASSERT_TRUE(opened.ok());
  // The impostor's stored state, before it sees Bob's card: its modified
  // client will answer from it (layout: docs/protocol/first-contact.md).
  const SecretBytes stored = opened->contact.Serialize();

  auto b1 = req.contact.HandleMessage(opened->reply, bob_->self(), kNow, rng_b_);
  ASSERT_TRUE(b1.ok());
  EXPECT_EQ(req.contact.state(), ContactState::kConfirming);

  // 1. The impostor's client fails KK message 1 and has nothing to send.
  auto m2 = opened->contact.HandleMessage(b1->reply, mallory.self(), kNow, rng_m_);
  ASSERT_FALSE(m2.ok());
  EXPECT_EQ(m2.error().code, Errc::kAuthenticationFailed);
  EXPECT_EQ(opened->contact.state(), ContactState::kFailed);

  // 2. A modified client answers anyway with a forged KK message 2 inside a
  // correct ratchet message. Bob refuses the contact.
  const ByteSpan s = stored.expose();
  ASSERT_EQ(s[2], static_cast<std::uint8_t>(ContactState::kAwaitingCard));
  const std::size_t ratchet_off = kPendingContactFixedBytes + 4;  // no card yet
  auto ratchet = crypto::DoubleRatchet::Parse(s.subspan(ratchet_off));
  ASSERT_TRUE(ratchet.ok());
  ASSERT_TRUE(ratchet->Decrypt(b1->reply, kNow).ok());
  const crypto::X25519KeyPair forged_e = crypto::X25519Generate(rng_m_);
  Bytes forged(forged_e.public_key.begin(), forged_e.public_key.end());
  Append(forged, rng_m_.Array<16>());
  PbWriter w;
  w.Varint(1, 1).Varint(2, 4).Len(4, forged);
  auto padded = Pad(w.bytes(), PaddingPolicy::kSmallestFitting);
  ASSERT_TRUE(padded.ok());
  auto forged_reply = ratchet->Encrypt(*padded, rng_m_);
  ASSERT_TRUE(forged_reply.ok());
  auto b2 = req.contact.HandleMessage(*forged_reply, bob_->self(), kNow, rng_b_);
  ASSERT_FALSE(b2.ok());
  EXPECT_EQ(b2.error().code, Errc::kAuthenticationFailed);
  EXPECT_STREQ(b2.error().message, "contact confirmation failed");
  EXPECT_EQ(req.contact.state(), ContactState::kFailed);
  EXPECT_EQ(req.contact.failure(), ContactFailure::kConfirmationFailed);
  EXPECT_EQ(req.contact.Encrypt(AsBytes("x"), rng_b_).error().code, Errc::kInvalidArgument);
}

// A man in the middle: Mallory hands Bob an invite naming Alice and accepts
// Alice's real invite, then forwards Bob's card and KK message 1 from one
// session into the other. KK's prologue is each session's own h, so Alice
// refuses the relayed confirmation.
TEST_F(FirstContact, RelayedConfirmationFromAnotherSessionIsRefused) {
  const auto ratchet_of = [](const SecretBytes& stored) {
    // No card is stored yet in either state used here.
    return crypto::DoubleRatchet::Parse(stored.expose().subspan(kPendingContactFixedBytes + 4));
  };
  // Session 1: Bob accepts Mallory's invite, which names Alice.
  Person mallory_as_alice = Impostor(*alice_, rng_m_);
  InviteOptions o;
  o.identity_key = alice_->id.signing.public_key;
  o.expires_at = kExpires;
  o.relay = &relay_;
  o.request_queue_id = rng_m_.Array<16>();
  auto fake = MakeInvite(o, kNow, rng_m_);
  ASSERT_TRUE(fake.ok());
  BuiltContactRequest bob_req = Request(fake->invite);
  auto s1 = OpenContactRequest(fake->state, bob_req.request, mallory_as_alice.self(), kNow,
                               rng_m_);
  ASSERT_TRUE(s1.ok());
  auto s1_ratchet = ratchet_of(s1->contact.Serialize());
  ASSERT_TRUE(s1_ratchet.ok());

  // Session 2: Mallory accepts Alice's real invite.
  MadeInvite real = Make();
  auto mallory_req = BuildContactRequest(ViaCode(real.invite), reply_queue_, kNow, rng_m_);
  ASSERT_TRUE(mallory_req.ok());
  auto s2 = OpenContactRequest(real.state, mallory_req->request, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(s2.ok());
  auto s2_ratchet = ratchet_of(mallory_req->contact.Serialize());
  ASSERT_TRUE(s2_ratchet.ok());
  ASSERT_TRUE(s2_ratchet->Decrypt(s2->reply, kNow).ok());  // Alice's card

  // Bob answers with his card and KK message 1 (bound to session 1's h).
  auto b1 = bob_req.contact.HandleMessage(s1->reply, bob_->self(), kNow, rng_b_);
  ASSERT_TRUE(b1.ok());
  auto forwarded = s1_ratchet->Decrypt(b1->reply, kNow);
  ASSERT_TRUE(forwarded.ok());
  auto relayed = s2_ratchet->Encrypt(*forwarded, rng_m_);
  ASSERT_TRUE(relayed.ok());
  auto a2 = s2->contact.HandleMessage(*relayed, alice_->self(), kNow, rng_a_);
  ASSERT_FALSE(a2.ok());
  EXPECT_STREQ(a2.error().message, "contact confirmation failed");
  EXPECT_EQ(s2->contact.state(), ContactState::kFailed);
}

TEST_F(FirstContact, ReplayedRequestIsRejectedForSingleAndMultiUseInvites) {
  // Single use: the bookkeeping deletes the key; the replay cannot open.
  MadeInvite single = Make();
  BuiltContactRequest req = Request(single.invite);
  auto first = OpenContactRequest(single.state, req.request, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(RecordOpenedRequest(single.state, first->request_id).ok());
  auto replay = OpenContactRequest(single.state, req.request, alice_->self(), kNow, rng_a_);
  ASSERT_FALSE(replay.ok());
  EXPECT_EQ(replay.error().code, Errc::kNotFound);
  EXPECT_EQ(RecordOpenedRequest(single.state, first->request_id).error().code,
            Errc::kInvalidArgument);

  // Multi use: the request id is recorded; a replay is refused, a new
  // request (another person, or the same one again) is taken.
  MadeInvite multi = Make(/*multi_use=*/true);
  BuiltContactRequest r1 = Request(multi.invite);
  auto o1 = OpenContactRequest(multi.state, r1.request, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(o1.ok());
  ASSERT_TRUE(RecordOpenedRequest(multi.state, o1->request_id).ok());
  EXPECT_FALSE(multi.state.consumed());
  auto again = OpenContactRequest(multi.state, r1.request, alice_->self(), kNow, rng_a_);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::kAlreadyExists);
  EXPECT_EQ(RecordOpenedRequest(multi.state, o1->request_id).error().code, Errc::kAlreadyExists);
  BuiltContactRequest r2 = Request(multi.invite);
  EXPECT_NE(r1.request, r2.request);
  auto o2 = OpenContactRequest(multi.state, r2.request, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(o2.ok());
  EXPECT_NE(o1->request_id, o2->request_id);
}

TEST_F(FirstContact, MultiUseInviteRecordsAtMostItsLimit) {
  MadeInvite multi = Make(/*multi_use=*/true);
  for (std::size_t i = 0; i < kMaxInviteRequests; ++i) {
    ContactRequestId id{};
    id[0] = static_cast<std::uint8_t>(i);
    id[1] = static_cast<std::uint8_t>(i >> 8);
    ASSERT_TRUE(RecordOpenedRequest(multi.state, id).ok());
  }
  ContactRequestId extra{};
  extra.fill(0xee);
  EXPECT_EQ(RecordOpenedRequest(multi.state, extra).error().code, Errc::kLimitExceeded);
  BuiltContactRequest req = Request(multi.invite);
  EXPECT_EQ(OpenContactRequest(multi.state, req.request, alice_->self(), kNow, rng_a_)
                .error()
                .code,
            Errc::kLimitExceeded);
}

TEST_F(FirstContact, FlippingAnyBitOfTheRequestIsRejected) {
  MadeInvite made = Make();
  BuiltContactRequest req = Request(made.invite);
  ASSERT_TRUE(OpenContactRequest(made.state, req.request, alice_->self(), kNow, rng_a_).ok());
  for (std::size_t bit = 0; bit < req.request.size() * 8; ++bit) {
    Bytes tampered = req.request;
    FlipBit(tampered, bit);
    auto r = OpenContactRequest(made.state, tampered, alice_->self(), kNow, rng_a_);
    ASSERT_FALSE(r.ok()) << "bit " << bit;
  }
  // Truncated and extended requests too.
  for (std::size_t cut : {std::size_t{1}, std::size_t{16}, kHelloMessageBytes}) {
    ByteSpan shorter(req.request.data(), req.request.size() - cut);
    EXPECT_FALSE(OpenContactRequest(made.state, shorter, alice_->self(), kNow, rng_a_).ok());
  }
  Bytes longer = req.request;
  longer.push_back(0);
  EXPECT_FALSE(OpenContactRequest(made.state, longer, alice_->self(), kNow, rng_a_).ok());
  EXPECT_EQ(OpenContactRequest(made.state, Bytes(kMaxContactRequestBytes + 1, 0), alice_->self(),
                               kNow, rng_a_)
                .error()
                .code,
            Errc::kLimitExceeded);
  EXPECT_EQ(OpenContactRequest(made.state, Bytes(kMinContactRequestBytes - 1, 0), alice_->self(),
                               kNow, rng_a_)
                .error()
                .code,
            Errc::kMalformed);
}

// Every bit of every first-contact ratchet message: refused, state unchanged.
TEST_F(FirstContact, TamperedContactMessagesChangeNothing) {
  MadeInvite made = Make();
  BuiltContactRequest req = Request(made.invite);
  auto opened = OpenContactRequest(made.state, req.request, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(opened.ok());
  const auto check_all_bits = [&](PendingContact& to, const Bytes& message, const Person& self,
                                  DeterministicRandom& rng) {
    const SecretBytes before = to.Serialize();
    // Every bit of the header and the first body bytes, then one bit per byte.
    for (std::size_t bit = 0; bit < message.size() * 8; bit += (bit < 8 * 160 ? 1 : 8)) {
      Bytes tampered = message;
      FlipBit(tampered, bit);
      auto r = to.HandleMessage(tampered, self.self(), kNow, rng);
      ASSERT_FALSE(r.ok()) << "bit " << bit;
    }
    EXPECT_TRUE(SameBytes(before, to.Serialize()));
  };
  check_all_bits(req.contact, opened->reply, *bob_, rng_b_);
  auto b1 = req.contact.HandleMessage(opened->reply, bob_->self(), kNow, rng_b_);
  ASSERT_TRUE(b1.ok());
  // A replay of a message already taken changes nothing either.
  EXPECT_FALSE(req.contact.HandleMessage(opened->reply, bob_->self(), kNow, rng_b_).ok());
  check_all_bits(opened->contact, b1->reply, *alice_, rng_a_);
  auto a2 = opened->contact.HandleMessage(b1->reply, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(a2.ok());
  check_all_bits(req.contact, a2->reply, *bob_, rng_b_);
  ASSERT_TRUE(req.contact.HandleMessage(a2->reply, bob_->self(), kNow, rng_b_).ok());
  EXPECT_TRUE(req.contact.confirmed());
}

TEST_F(FirstContact, ExpiredInviteIsRejectedOnBothSides) {
  MadeInvite made = Make();
  auto late = BuildContactRequest(ViaCode(made.invite), reply_queue_, kExpires, rng_b_);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, Errc::kInvalidArgument);
  EXPECT_STREQ(late.error().message, "invite has expired");
  // A request made in time but arriving after expiry.
  BuiltContactRequest req = Request(made.invite);
  auto opened = OpenContactRequest(made.state, req.request, alice_->self(), kExpires, rng_a_);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, Errc::kNotFound);
  EXPECT_STREQ(opened.error().message, "invite has expired");
  EXPECT_TRUE(
      OpenContactRequest(made.state, req.request, alice_->self(), kExpires - 1, rng_a_).ok());
  // And an invite cannot be made already expired.
  InviteOptions o;
  o.identity_key = alice_->id.signing.public_key;
  o.expires_at = kNow;
  o.relay = &relay_;
  o.request_queue_id = rng_a_.Array<16>();
  EXPECT_EQ(MakeInvite(o, kNow, rng_a_).error().code, Errc::kInvalidArgument);
}

// Someone who holds the invite key but not the secret (or a code with a
// changed secret or fingerprint) cannot make a request the inviter accepts.
TEST_F(FirstContact, WrongInviteSecretOrFingerprintFailsTheRequest) {
  MadeInvite made = Make();
  Invite wrong_secret = made.invite.Clone();
  wrong_secret.invite_secret.expose_mut()[0] ^= 1;
  auto r1 = BuildContactRequest(wrong_secret, reply_queue_, kNow, rng_b_);
  ASSERT_TRUE(r1.ok());
  auto o1 = OpenContactRequest(made.state, r1->request, alice_->self(), kNow, rng_a_);
  ASSERT_FALSE(o1.ok());
  EXPECT_EQ(o1.error().code, Errc::kAuthenticationFailed);

  Invite wrong_fingerprint = made.invite.Clone();
  wrong_fingerprint.fingerprint[3] ^= 0x40;
  auto r2 = BuildContactRequest(wrong_fingerprint, reply_queue_, kNow, rng_b_);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(OpenContactRequest(made.state, r2->request, alice_->self(), kNow, rng_a_)
                .error()
                .code,
            Errc::kAuthenticationFailed);

  // A request to another invite of the same inviter does not open this one.
  MadeInvite other = Make();
  BuiltContactRequest r3 = Request(other.invite);
  EXPECT_FALSE(OpenContactRequest(made.state, r3.request, alice_->self(), kNow, rng_a_).ok());
}

TEST_F(FirstContact, OwnCardMustCarryOwnNoiseKey) {
  MadeInvite made = Make();
  BuiltContactRequest req = Request(made.invite);
  const ContactSelf mismatched{alice_->card, bob_->id.noise};
  EXPECT_EQ(OpenContactRequest(made.state, req.request, mismatched, kNow, rng_a_).error().code,
            Errc::kInvalidArgument);
}

TEST_F(FirstContact, InviteKeysAndFingerprintFollowTheDesign) {
  MadeInvite made = Make();
  const ByteSpan secret = made.state.invite_secret.expose();
  // fingerprint = BLAKE2b-256(invite_secret || identity_pk)[0:16]
  Bytes input(secret.begin(), secret.end());
  Append(input, alice_->id.signing.public_key);
  const auto digest = crypto::Blake2b256(input);
  EXPECT_TRUE(std::equal(made.invite.fingerprint.begin(), made.invite.fingerprint.end(),
                         digest.begin()));
  // Two invites from one person have unrelated fingerprints and keys.
  MadeInvite second = Make();
  EXPECT_NE(made.invite.fingerprint, second.invite.fingerprint);
  EXPECT_NE(made.invite.invite_key, second.invite.invite_key);
  // PSK and send key: HKDF(-, invite_secret, label, 32), distinct.
  auto psk = InvitePsk(secret);
  auto send = InviteSendKey(secret);
  ASSERT_TRUE(psk.ok() && send.ok());
  Bytes expected(32);
  ASSERT_TRUE(crypto::HkdfSha256({}, secret, AsBytes("rhizome/v1/invite-send"), expected).ok());
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), send->expose().begin()));
  EXPECT_FALSE(psk->ConstantTimeEquals(*send));
  EXPECT_EQ(InvitePsk(Bytes(31, 1)).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(InviteFingerprint(Bytes(32, 1), Bytes(31, 1)).error().code, Errc::kInvalidArgument);
  // The prologue: label || u16be(1) || fingerprint.
  const Bytes prologue = FirstContactPrologue(made.invite.fingerprint);
  ASSERT_EQ(prologue.size(), kFirstContactPrologueBytes);
  EXPECT_EQ(std::string(prologue.begin(), prologue.begin() + 24), "rhizome/v1/first-contact");
  EXPECT_EQ(prologue[24], 0);
  EXPECT_EQ(prologue[25], 1);
}

// Every state persists and resumes: the run below stores and reloads each
// side after every step (a restart between any two messages).
TEST_F(FirstContact, EveryStateSurvivesSerializeAndParse) {
  const auto reload = [](PendingContact& c) {
    const SecretBytes stored = c.Serialize();
    ASSERT_LE(stored.size(), kMaxPendingContactStateBytes);
    auto parsed = PendingContact::Parse(stored.expose());
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_TRUE(SameBytes(stored, parsed->Serialize()));  // canonical
    c = std::move(parsed).value();
  };
  MadeInvite made = Make();
  BuiltContactRequest req = Request(made.invite);
  reload(req.contact);
  auto opened = OpenContactRequest(made.state, req.request, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(opened.ok());
  reload(opened->contact);
  auto b1 = req.contact.HandleMessage(opened->reply, bob_->self(), kNow, rng_b_);
  ASSERT_TRUE(b1.ok());
  reload(req.contact);  // kConfirming: KK is rebuilt from the stored ephemeral
  EXPECT_EQ(req.contact.peer_card()->identity_key, alice_->card.identity_key);
  auto a2 = opened->contact.HandleMessage(b1->reply, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(a2.ok());
  reload(opened->contact);
  ASSERT_TRUE(req.contact.HandleMessage(a2->reply, bob_->self(), kNow, rng_b_).ok());
  reload(req.contact);
  EXPECT_TRUE(req.contact.confirmed() && opened->contact.confirmed());
  auto m = req.contact.Encrypt(AsBytes("after restarts"), rng_b_);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(opened->contact.Decrypt(*m, kNow).ok());

  // A failed contact stores as a bare record.
  Person carol = MakePerson("Carol", rng_m_);
  MadeInvite wrong = Make(false, &carol);
  BuiltContactRequest r2 = Request(wrong.invite);
  auto o2 = OpenContactRequest(wrong.state, r2.request, alice_->self(), kNow, rng_a_);
  ASSERT_TRUE(o2.ok());
  ASSERT_FALSE(r2.contact.HandleMessage(o2->reply, bob_->self(), kNow, rng_b_).ok());
  EXPECT_EQ(r2.contact.Serialize().size(), kPendingContactFixedBytes + 4);
  reload(r2.contact);
  EXPECT_EQ(r2.contact.failure(), ContactFailure::kCardDoesNotMatchInvite);
}

// The stored-state catalogue (docs/protocol/first-contact.md).
TEST_F(FirstContact, MalformedStoredStateCatalogue) {
  MadeInvite made = Make();
  BuiltContactRequest req = Request(made.invite);
  const SecretBytes stored = req.contact.Serialize();
  const Bytes good(stored.expose().begin(), stored.expose().end());
  const auto code = [](const Bytes& b) {
    auto r = PendingContact::Parse(b);
    return r.ok() ? Errc::kInternal : r.error().code;
  };
  ASSERT_TRUE(PendingContact::Parse(good).ok());
  EXPECT_EQ(code({}), Errc::kMalformed);
  EXPECT_EQ(code(Bytes(kMaxPendingContactStateBytes + 1, 0)), Errc::kLimitExceeded);
  auto with = [&](std::size_t off, std::uint8_t v) {
    Bytes b = good;
    b[off] = v;
    return b;
  };
  EXPECT_EQ(code(with(0, 2)), Errc::kUnsupported);                  // version
  EXPECT_EQ(code(Bytes(good.begin(), good.begin() + 100)), Errc::kMalformed);  // truncated
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_EQ(code(longer), Errc::kMalformed);                        // trailing byte
  EXPECT_EQ(code(with(1, 3)), Errc::kMalformed);                    // unknown role
  EXPECT_EQ(code(with(2, 6)), Errc::kMalformed);                    // unknown state
  EXPECT_EQ(code(with(3, 3)), Errc::kMalformed);                    // unknown failure
  EXPECT_EQ(code(with(3, 1)), Errc::kMalformed);                    // failure but not failed
  EXPECT_EQ(code(with(1, 2)), Errc::kCorrupt);                      // inviter in request-sent
  EXPECT_EQ(code(with(2, 3)), Errc::kMalformed);                    // confirming without card
  EXPECT_EQ(code(with(116, 1)), Errc::kMalformed);                  // ephemeral in request-sent
  Bytes no_secret = good;
  std::fill(no_secret.begin() + 84, no_secret.begin() + 116, 0);
  EXPECT_EQ(code(no_secret), Errc::kMalformed);                     // secret missing
  Bytes no_hash = good;
  std::fill(no_hash.begin() + 4, no_hash.begin() + 68, 0);
  EXPECT_EQ(code(no_hash), Errc::kMalformed);
  EXPECT_EQ(code(with(150, 0xff)), Errc::kMalformed);               // card length
  // A ratchet that belongs to another contact (another h): kCorrupt.
  Bytes other_h = with(10, static_cast<std::uint8_t>(good[10] ^ 1));
  EXPECT_EQ(code(other_h), Errc::kCorrupt);
  // A damaged ratchet: the ratchet parser's error.
  Bytes bad_ratchet = good;
  bad_ratchet[kPendingContactFixedBytes + 4] = 9;  // ratchet version byte
  EXPECT_EQ(code(bad_ratchet), Errc::kUnsupported);
}

// --- Known-answer transcript ---------------------------------------------------

constexpr const char* kKatFile = "rhizome_first_contact_kat.json";

void RunTranscript(json& doc, bool record) {
  const auto check = [&](json& slot, const json& actual, const std::string& what) {
    if (record) {
      slot = actual;
    } else {
      EXPECT_EQ(slot, actual) << what;
    }
  };
  const json& setup = doc["setup"];
  const std::uint64_t now = setup["now"].get<std::uint64_t>();
  DeterministicRandom ra(setup["inviter_rng_seed"].get<std::uint64_t>());
  DeterministicRandom rb(setup["acceptor_rng_seed"].get<std::uint64_t>());
  Person alice = MakePerson("Alice", ra);
  Person bob = MakePerson("Bob", rb);
  RelayAddress relay = MakeRelay(ra, "relay.example.org");
  MessageQueue reply_queue = MakeQueue(rb, "reply.example.net");
  InviteOptions o;
  o.identity_key = alice.id.signing.public_key;
  o.expires_at = setup["expires_at"].get<std::uint64_t>();
  o.relay = &relay;
  o.request_queue_id = ra.Array<16>();
  auto made = MakeInvite(o, now, ra);
  ASSERT_TRUE(made.ok());
  json& out = doc["transcript"];
  auto code = FormatInviteCode(made->invite);
  ASSERT_TRUE(code.ok());
  check(out["invite_code"], *code, "invite code");
  const ByteSpan secret = made->state.invite_secret.expose();
  check(out["invite_secret"], ToHex(secret), "invite secret");
  check(out["inviter_identity_key"], ToHex(alice.id.signing.public_key), "identity key");
  check(out["fingerprint"], ToHex(made->invite.fingerprint), "fingerprint");
  check(out["invite_psk"], ToHex(InvitePsk(secret)->expose()), "psk");
  check(out["request_queue_send_key"], ToHex(InviteSendKey(secret)->expose()), "send key");
  check(out["xpsk1_prologue"], ToHex(FirstContactPrologue(made->invite.fingerprint)), "prologue");

  auto invite = ParseInviteCode(*code);
  ASSERT_TRUE(invite.ok());
  auto req = BuildContactRequest(*invite, reply_queue, now, rb);
  ASSERT_TRUE(req.ok());
  check(out["request"], ToHex(req->request), "request");
  check(out["handshake_hash"], ToHex(req->contact.handshake_hash()), "h");
  auto opened = OpenContactRequest(made->state, req->request, alice.self(), now, ra);
  ASSERT_TRUE(opened.ok());
  check(out["request_id"], ToHex(opened->request_id), "request id");
  check(out["inviter_card_message"], ToHex(opened->reply), "inviter card message");
  auto b1 = req->contact.HandleMessage(opened->reply, bob.self(), now, rb);
  ASSERT_TRUE(b1.ok());
  check(out["acceptor_card_message"], ToHex(b1->reply), "acceptor card message");
  auto a2 = opened->contact.HandleMessage(b1->reply, alice.self(), now, ra);
  ASSERT_TRUE(a2.ok());
  check(out["confirm_message"], ToHex(a2->reply), "confirm message");
  auto b2 = req->contact.HandleMessage(a2->reply, bob.self(), now, rb);
  ASSERT_TRUE(b2.ok());
  ASSERT_TRUE(req->contact.confirmed() && opened->contact.confirmed());
  auto m1 = req->contact.Encrypt(AsBytes("first message after confirmation"), rb);
  ASSERT_TRUE(m1.ok());
  check(out["acceptor_message"], ToHex(*m1), "acceptor message");
  ASSERT_TRUE(opened->contact.Decrypt(*m1, now).ok());
  auto m2 = opened->contact.Encrypt(AsBytes("and the answer"), ra);
  ASSERT_TRUE(m2.ok());
  check(out["inviter_message"], ToHex(*m2), "inviter message");
  ASSERT_TRUE(req->contact.Decrypt(*m2, now).ok());
  check(out["acceptor_state_blake2b_256"],
        ToHex(crypto::Blake2b256(req->contact.Serialize().expose())), "acceptor state");
  check(out["inviter_state_blake2b_256"],
        ToHex(crypto::Blake2b256(opened->contact.Serialize().expose())), "inviter state");
}

TEST(FirstContactKat, KnownAnswerTranscriptMatchesByteForByte) {
  rhizome::testing::InitCryptoOnce();
  const char* regenerate = std::getenv("RHIZOME_REGENERATE_KAT");
  if (regenerate != nullptr && std::string(regenerate) == "1") {
    json doc;
    doc["description"] =
        "Rhizome first contact (invite, Noise_Xpsk1 request, cards, Noise_KK confirmation) "
        "known-answer transcript. Self-generated regression vectors, not from any external "
        "source: see docs/protocol/first-contact.md.";
    doc["regenerate"] =
        "RHIZOME_REGENERATE_KAT=1 protocol_unit_tests "
        "--gtest_filter='FirstContactKat.*'";
    doc["setup"] = {{"inviter_rng_seed", 20261101},
                    {"acceptor_rng_seed", 20261102},
                    {"now", kNow},
                    {"expires_at", kExpires}};
    RunTranscript(doc, /*record=*/true);
    std::ofstream file(rhizome::testing::VectorPath(kKatFile));
    file << doc.dump(1) << "\n";
    ASSERT_TRUE(file.good());
    return;
  }
  json doc = json::parse(rhizome::testing::ReadFileOrDie(rhizome::testing::VectorPath(kKatFile)));
  RunTranscript(doc, /*record=*/false);
}

}  // namespace
}  // namespace rhizome::protocol
