// One-to-one messaging end to end: real profiles (SQLCipher), the real relay
// binary on 127.0.0.1, client::Messenger doing invites, first contact, sealed
// uploads, fetch, dedup and receipts. Every wait is bounded (sync timeouts).
#include "rhizome/client/messenger.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "process.h"
#include "relay_process.h"
#include "rhizome/client/relay_link.h"
#include "rhizome/protocol/first_contact.h"
#include "rhizome/protocol/invite.h"
#include "rhizome/protocol/path_seal.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/sign.h"
#include "rhizome/storage/database.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/identity.h"
#include "rhizome/storage/identity_store.h"
#include "rhizome/storage/profile.h"
#include "test_support.h"

namespace rhizome::testing {
namespace {

namespace fs = std::filesystem;
using client::ContactStatus;
using client::Messenger;
using client::MessageState;

constexpr auto kSyncTimeout = std::chrono::seconds(10);
constexpr const char* kAlice = "Alice Marker-Name-4b1d";
constexpr const char* kBob = "Bob Marker-Name-9e2c";

// A profile with an identity and a messenger on it, with a clock the test moves.
struct Person {
  Person(const fs::path& dir, const std::string& name) {
    auto& rng = crypto::SystemRandom();
    auto p = storage::Profile::Create(dir, AsBytes("pass"), crypto::Argon2idParams{1, 8192}, rng);
    EXPECT_TRUE(p.ok());
    profile.emplace(std::move(*p));
    auto id = protocol::GenerateIdentity(name, rng);
    EXPECT_TRUE(id.ok());
    EXPECT_TRUE(storage::SaveIdentity(profile->db(), *id).ok());
    auto m = Messenger::Open(*profile, rng, client::RelayLinkConnector(), [this] { return clock; });
    EXPECT_TRUE(m.ok());
    messenger.emplace(std::move(*m));
  }
  // Closes the Messenger and opens a new one on the same profile (as a new
  // process would, e.g. after the identity row was changed under it).
  void Reopen() {
    messenger.reset();
    auto m = Messenger::Open(*profile, crypto::SystemRandom(), client::RelayLinkConnector(),
                             [this] { return clock; });
    EXPECT_TRUE(m.ok());
    if (m) messenger.emplace(std::move(*m));
  }
  // Puts another identity row under the profile (as someone holding the
  // session state but not this identity would present), then reopens.
  void ReplaceIdentity(const protocol::Identity& id) {
    messenger.reset();
    EXPECT_TRUE(profile->db().Exec("DELETE FROM identity").ok());
    EXPECT_TRUE(storage::SaveIdentity(profile->db(), id).ok());
    Reopen();
  }
  Messenger& operator*() { return *messenger; }
  Messenger* operator->() { return &*messenger; }

  std::uint64_t clock = 1'800'000'000;
  std::optional<storage::Profile> profile;
  std::optional<Messenger> messenger;
};

client::SyncReport SyncOk(Person& p) {
  auto r = p->Sync(kSyncTimeout);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : client::SyncReport{};
}

std::optional<client::ContactInfo> FindContact(Person& p, const std::string& alias) {
  auto list = p->ListContacts();
  if (!list) return std::nullopt;
  for (auto& c : *list) {
    if (c.alias == alias) return c;
  }
  return std::nullopt;
}

class MessagingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    relay_.emplace(tmp_.path() / "relay", tmp_.path() / "relay.log", 0);
    ASSERT_TRUE(relay_->ok());
    alice_.emplace(tmp_.path() / "alice", kAlice);
    bob_.emplace(tmp_.path() / "bob", kBob);
    ASSERT_TRUE((*alice_)->AddRelay(relay_->address_text()).ok());
    ASSERT_TRUE((*bob_)->AddRelay(relay_->address_text()).ok());
  }

  // Alice invites, Bob accepts as "Alice"; both sync until confirmed.
  // `direct`: a --direct invite (Alice must have a direct address set).
  void Connect(bool direct = false) {
    auto invite = (*alice_)->CreateInvite(1, 3600, kSyncTimeout, direct);
    ASSERT_TRUE(invite.ok()) << invite.error().message;
    auto accepted = (*bob_)->AcceptInvite(invite->code, "Alice", kSyncTimeout);
    ASSERT_TRUE(accepted.ok()) << accepted.error().message;
    EXPECT_EQ(accepted->status, ContactStatus::kRequestSent);
    SyncOk(*alice_);  // opens the request, sends Alice's card
    SyncOk(*bob_);    // checks the card, sends Bob's card + KK 1
    SyncOk(*alice_);  // KK 2: Alice confirmed
    SyncOk(*bob_);    // Bob confirmed
    auto a = FindContact(*alice_, kBob);
    auto b = FindContact(*bob_, "Alice");
    ASSERT_TRUE(a.has_value());
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(a->status, ContactStatus::kConfirmed);
    EXPECT_EQ(b->status, ContactStatus::kConfirmed);
  }

  TempDir tmp_;
  std::optional<RelayProcess> relay_;
  std::optional<Person> alice_;
  std::optional<Person> bob_;
};

TEST_F(MessagingTest, InviteAcceptAndSyncConfirmBothSides) {
  Connect();
  // Both sides hold the same safety number.
  auto sa = (*alice_)->Safety(kBob, false);
  auto sb = (*bob_)->Safety("Alice", false);
  ASSERT_TRUE(sa.ok());
  ASSERT_TRUE(sb.ok());
  EXPECT_EQ(sa->safety_number, sb->safety_number);
  // The invite was single-use: it is gone.
  auto invites = (*alice_)->ListInvites();
  ASSERT_TRUE(invites.ok());
  EXPECT_TRUE(invites->empty());
}

TEST_F(MessagingTest, MessagesFlowBothWaysWithReceipts) {
  Connect();
  ASSERT_TRUE((*alice_)->Send(kBob, "hello Bob").ok());
  ASSERT_TRUE((*alice_)->Send(kBob, "second").ok());
  ASSERT_TRUE((*bob_)->Send("Alice", "hi Alice").ok());
  SyncOk(*alice_);
  auto rb = SyncOk(*bob_);
  EXPECT_EQ(rb.received, 2u);
  auto ra = SyncOk(*alice_);
  EXPECT_EQ(ra.received, 1u);
  EXPECT_EQ(ra.receipts, 2u);
  SyncOk(*bob_);

  auto at_bob = (*bob_)->Read("Alice");
  ASSERT_TRUE(at_bob.ok());
  std::vector<std::string> incoming;
  for (const auto& m : *at_bob) {
    if (!m.outgoing) {
      incoming.push_back(m.text);
    } else {
      EXPECT_EQ(m.state, MessageState::kDelivered);
    }
  }
  EXPECT_EQ(incoming, (std::vector<std::string>{"hello Bob", "second"}));
  auto at_alice = (*alice_)->Read(kBob);
  ASSERT_TRUE(at_alice.ok());
  for (const auto& m : *at_alice) {
    if (m.outgoing) {
      EXPECT_EQ(m.state, MessageState::kDelivered) << m.text;
    }
  }
}

TEST_F(MessagingTest, ResentMessageIsStoredOnceAndReceiptedAgain) {
  Connect();
  ASSERT_TRUE((*alice_)->Send(kBob, "only once").ok());
  SyncOk(*alice_);  // uploaded
  // Alice's clock passes the retry backoff before Bob's receipt arrives: the
  // same ciphertext goes out again (sealed anew).
  alice_->clock += client::kMaxRetrySeconds + 1;
  auto again = SyncOk(*alice_);
  // The text, and Alice's last first-contact message (kept until Bob's first
  // session message shows it arrived).
  EXPECT_EQ(again.uploaded, 2u);
  auto rb = SyncOk(*bob_);
  EXPECT_EQ(rb.received, 1u);
  auto msgs = (*bob_)->Read("Alice");
  ASSERT_TRUE(msgs.ok());
  ASSERT_EQ(msgs->size(), 1u);
  EXPECT_EQ((*msgs)[0].text, "only once");
  auto ra = SyncOk(*alice_);
  EXPECT_GE(ra.receipts, 1u);
  auto mine = (*alice_)->Read(kBob);
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ((*mine)[0].state, MessageState::kDelivered);
}

TEST_F(MessagingTest, SingleUseInviteRefusesASecondAcceptor) {
  auto invite = (*alice_)->CreateInvite(1, 3600, kSyncTimeout);
  ASSERT_TRUE(invite.ok());
  ASSERT_TRUE((*bob_)->AcceptInvite(invite->code, "Alice", kSyncTimeout).ok());
  SyncOk(*alice_);
  Person carol(tmp_.path() / "carol", "Carol");
  ASSERT_TRUE(carol->AddRelay(relay_->address_text()).ok());
  // The request queue is deleted once used: Carol's request cannot be stored.
  (void)carol->AcceptInvite(invite->code, "Alice", kSyncTimeout);
  SyncOk(carol);
  SyncOk(*alice_);
  auto contacts = (*alice_)->ListContacts();
  ASSERT_TRUE(contacts.ok());
  EXPECT_EQ(contacts->size(), 1u);  // Bob only
  // Carol is told: the relay refused her request (the queue is gone).
  auto at_carol = FindContact(carol, "Alice");
  ASSERT_TRUE(at_carol.has_value());
  EXPECT_EQ(at_carol->status, ContactStatus::kFailed);
}

TEST_F(MessagingTest, OwnInviteIsRefused) {
  auto invite = (*alice_)->CreateInvite(1, 3600, kSyncTimeout);
  ASSERT_TRUE(invite.ok());
  auto accepted = (*alice_)->AcceptInvite(invite->code, "Me", kSyncTimeout);
  ASSERT_FALSE(accepted.ok());
  EXPECT_EQ(accepted.error().code, Errc::kInvalidArgument);
}

// Sends `n` sealed junk blobs to an invite's request queue, as anyone holding
// the code can. Returns how many the relay accepted.
int SendJunkRequests(const std::string& code, int n) {
  auto invite = protocol::ParseInviteCode(code);
  if (!invite) return -1;
  auto link = client::RelayLink::Connect(invite->relay, 0, std::chrono::seconds(5));
  if (!link) return -1;
  auto send_key = protocol::InviteSendKey(invite->invite_secret.expose());
  if (!send_key) return -1;
  int accepted = 0;
  for (int i = 0; i < n; ++i) {
    Bytes junk(protocol::kMinContactRequestBytes + static_cast<std::size_t>(i));
    crypto::SystemRandom().Fill(junk);
    auto blob = protocol::SealForPath(junk, invite->invite_key, crypto::SystemRandom());
    if (blob && link->Send(invite->request_queue_id, send_key->expose(), *blob)) ++accepted;
  }
  return accepted;
}

std::uint64_t RelayQueues(const RelayProcess& relay) {
  auto body = HttpExchange(relay.metrics_port(), "GET /metrics HTTP/1.0\r\n\r\n");
  auto samples = Samples(body);
  return samples.count("rhizome_relay_queues") ? samples["rhizome_relay_queues"] : ~0ull;
}

TEST(MessagingSecurity, JunkContactRequestsCreateNoQueuesOnTheRelay) {
  TempDir tmp;
  RelayProcess relay(tmp.path() / "relay", tmp.path() / "relay.log", 0,
                     {"--metrics", "127.0.0.1:0"}, /*metrics=*/true);
  ASSERT_TRUE(relay.ok());
  ASSERT_NE(relay.metrics_port(), 0);
  Person alice(tmp.path() / "alice", kAlice);
  ASSERT_TRUE(alice->AddRelay(relay.address_text()).ok());
  auto invite = alice->CreateInvite(50, 3600, kSyncTimeout);  // a flyer
  ASSERT_TRUE(invite.ok());
  const std::uint64_t before = RelayQueues(relay);
  ASSERT_EQ(before, 1u);  // the request queue
  ASSERT_EQ(SendJunkRequests(invite->code, 20), 20);
  auto r = alice->Sync(kSyncTimeout);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dropped, 20u);
  EXPECT_EQ(RelayQueues(relay), before) << "a request that does not open made queues";
  auto contacts = alice->ListContacts();
  ASSERT_TRUE(contacts.ok());
  EXPECT_TRUE(contacts->empty());
  // A genuine request behind the junk still works.
  Person bob(tmp.path() / "bob", kBob);
  ASSERT_TRUE(bob->AddRelay(relay.address_text()).ok());
  ASSERT_TRUE(bob->AcceptInvite(invite->code, "Alice", kSyncTimeout).ok());
  for (int i = 0; i < 2; ++i) {
    SyncOk(alice);
    SyncOk(bob);
  }
  auto at_bob = FindContact(bob, "Alice");
  ASSERT_TRUE(at_bob.has_value());
  EXPECT_EQ(at_bob->status, ContactStatus::kConfirmed);
}

// Privacy (DESIGN §6): before a contact is confirmed the inviter connects to
// no relay the acceptor chose. A request naming a reply queue on another relay
// is dropped without connecting there.
TEST_F(MessagingTest, RequestWithAReplyQueueOnAForeignRelayIsDropped) {
  RelayProcess foreign(tmp_.path() / "foreign", tmp_.path() / "foreign.log", 0,
                       {"--metrics", "127.0.0.1:0"}, /*metrics=*/true);
  ASSERT_TRUE(foreign.ok());
  auto invite_made = (*alice_)->CreateInvite(2, 3600, kSyncTimeout);
  ASSERT_TRUE(invite_made.ok());
  auto invite = protocol::ParseInviteCode(invite_made->code);
  ASSERT_TRUE(invite.ok());
  // The attacker's reply queue, on the attacker's relay.
  auto link = client::RelayLink::Connect(foreign.address(), 0, std::chrono::seconds(5));
  ASSERT_TRUE(link.ok());
  auto recipient = crypto::Ed25519Generate(crypto::SystemRandom());
  auto send_key = crypto::SecretBytes::Random(crypto::SystemRandom(), 32);
  auto made = link->CreateQueue(recipient, send_key.expose());
  ASSERT_TRUE(made.ok());
  protocol::MessageQueue reply;
  reply.relay = foreign.address().Clone();
  reply.sender_id = made->sender_id;
  reply.send_key = send_key.Clone();
  reply.seal_key = crypto::X25519Generate(crypto::SystemRandom()).public_key;
  auto built = protocol::BuildContactRequest(*invite, reply, alice_->clock, crypto::SystemRandom());
  ASSERT_TRUE(built.ok());
  auto to_alice = client::RelayLink::Connect(invite->relay, 0, std::chrono::seconds(5));
  ASSERT_TRUE(to_alice.ok());
  auto request_key = protocol::InviteSendKey(invite->invite_secret.expose());
  ASSERT_TRUE(request_key.ok());
  auto blob = protocol::SealForPath(built->request, invite->invite_key, crypto::SystemRandom());
  ASSERT_TRUE(blob.ok());
  ASSERT_TRUE(to_alice->Send(invite->request_queue_id, request_key->expose(), *blob).ok());
  const auto connections_before =
      Samples(HttpExchange(foreign.metrics_port(), "GET /metrics HTTP/1.0\r\n\r\n"))
          ["rhizome_relay_connections_accepted_total"];
  auto r = (*alice_)->Sync(kSyncTimeout);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dropped, 1u);
  auto contacts = (*alice_)->ListContacts();
  ASSERT_TRUE(contacts.ok());
  EXPECT_TRUE(contacts->empty());
  const auto connections_after =
      Samples(HttpExchange(foreign.metrics_port(), "GET /metrics HTTP/1.0\r\n\r\n"))
          ["rhizome_relay_connections_accepted_total"];
  EXPECT_EQ(connections_after, connections_before) << "the inviter connected to the foreign relay";
}

TEST_F(MessagingTest, RevokeWhileTheRelayIsDownIsCompletedByALaterSync) {
  auto invite = (*alice_)->CreateInvite(5, 3600, kSyncTimeout);
  ASSERT_TRUE(invite.ok());
  const auto port = relay_->address().port;
  ASSERT_EQ(relay_->Stop(), 0);
  ASSERT_TRUE((*alice_)->RevokeInvite(invite->id, std::chrono::seconds(2)).ok());
  auto invites = (*alice_)->ListInvites();
  ASSERT_TRUE(invites.ok());
  EXPECT_TRUE(invites->empty());  // the key is gone at once
  relay_.emplace(tmp_.path() / "relay", tmp_.path() / "relay2.log", port);
  ASSERT_TRUE(relay_->ok());
  EXPECT_EQ(SendJunkRequests(invite->code, 1), 1);  // the queue still exists on the relay...
  SyncOk(*alice_);
  EXPECT_EQ(SendJunkRequests(invite->code, 1), 0);  // ...until the next pass deletes it
}

TEST_F(MessagingTest, ADamagedContactDoesNotStopDeliveryForOthers) {
  Connect();
  Person carol(tmp_.path() / "carol", "Carol");
  ASSERT_TRUE(carol->AddRelay(relay_->address_text()).ok());
  auto invite = (*alice_)->CreateInvite(1, 3600, kSyncTimeout);
  ASSERT_TRUE(invite.ok());
  ASSERT_TRUE(carol->AcceptInvite(invite->code, "Alice", kSyncTimeout).ok());
  for (int i = 0; i < 2; ++i) {
    SyncOk(*alice_);
    SyncOk(carol);
  }
  ASSERT_TRUE((*bob_)->Send("Alice", "from bob").ok());
  ASSERT_TRUE(carol->Send("Alice", "from carol").ok());
  SyncOk(*bob_);
  SyncOk(carol);
  // Bob's session in Alice's profile is damaged (a disk fault, a bug).
  auto st = alice_->profile->db().Prepare("UPDATE contacts SET session = x'00' WHERE alias = ?1");
  ASSERT_TRUE(st.ok());
  st->Bind(1, std::string_view(kBob));
  ASSERT_TRUE(st->Run().ok());
  auto r = (*alice_)->Sync(kSyncTimeout);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_GE(r->deferred, 1u);
  EXPECT_EQ(r->received, 1u);  // Carol's message
  auto from_carol = (*alice_)->Read("Carol");
  ASSERT_TRUE(from_carol.ok());
  ASSERT_EQ(from_carol->size(), 1u);
  EXPECT_EQ((*from_carol)[0].text, "from carol");
}

TEST_F(MessagingTest, MultiUseInviteMakesOneContactPerAcceptor) {
  auto invite = (*alice_)->CreateInvite(2, 3600, kSyncTimeout);
  ASSERT_TRUE(invite.ok());
  Person carol(tmp_.path() / "carol", "Carol");
  ASSERT_TRUE(carol->AddRelay(relay_->address_text()).ok());
  ASSERT_TRUE((*bob_)->AcceptInvite(invite->code, "", kSyncTimeout).ok());
  ASSERT_TRUE(carol->AcceptInvite(invite->code, "", kSyncTimeout).ok());
  for (int i = 0; i < 2; ++i) {
    SyncOk(*alice_);
    SyncOk(*bob_);
    SyncOk(carol);
  }
  SyncOk(*alice_);
  auto a = FindContact(*alice_, kBob);
  auto c = FindContact(*alice_, "Carol");
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(a->status, ContactStatus::kConfirmed);
  EXPECT_EQ(c->status, ContactStatus::kConfirmed);
  // Without --name the acceptor names the contact after the card.
  EXPECT_TRUE(FindContact(*bob_, kAlice).has_value());
}

TEST_F(MessagingTest, RelayDownKeepsMessageQueuedUntilItReturns) {
  Connect();
  const auto port = relay_->address().port;
  ASSERT_EQ(relay_->Stop(), 0);
  ASSERT_TRUE((*alice_)->Send(kBob, "while down").ok());
  auto r = (*alice_)->Sync(std::chrono::seconds(3));
  ASSERT_TRUE(r.ok());
  EXPECT_GE(r->relays_unreachable, 1u);
  auto mine = (*alice_)->Read(kBob);
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ((*mine)[0].state, MessageState::kQueued);
  // Same data directory, same port: the relay is back with the same address.
  relay_.emplace(tmp_.path() / "relay", tmp_.path() / "relay2.log", port);
  ASSERT_TRUE(relay_->ok());
  SyncOk(*alice_);
  auto rb = SyncOk(*bob_);
  EXPECT_EQ(rb.received, 1u);
}

TEST_F(MessagingTest, NoPlaintextMarkerInAnyFileWritten) {
  Connect();
  const std::string marker = "PLAINTEXT-MARKER-7f3a9c";
  ASSERT_TRUE((*alice_)->Send(kBob, marker).ok());
  SyncOk(*alice_);
  SyncOk(*bob_);
  SyncOk(*alice_);
  auto msgs = (*bob_)->Read("Alice");
  ASSERT_TRUE(msgs.ok());
  ASSERT_EQ(msgs->size(), 1u);
  ASSERT_EQ((*msgs)[0].text, marker);
  std::size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(tmp_.path())) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ++files;
    // The display names are checked too; 3-5 letter strings turn up by chance in
    // random bytes, so look for the full card names.
    for (const std::string& needle : {marker, std::string(kAlice), std::string(kBob)}) {
      EXPECT_EQ(data.find(needle), std::string::npos)
          << needle << " found in " << entry.path().filename();
    }
  }
  EXPECT_GT(files, 4u);
}

TEST_F(MessagingTest, SendToUnconfirmedContactIsRefused) {
  auto invite = (*alice_)->CreateInvite(1, 3600, kSyncTimeout);
  ASSERT_TRUE(invite.ok());
  ASSERT_TRUE((*bob_)->AcceptInvite(invite->code, "Alice", kSyncTimeout).ok());
  auto sent = (*bob_)->Send("Alice", "too early");
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().code, Errc::kInvalidArgument);
  EXPECT_FALSE((*bob_)->Send("Nobody", "x").ok());
}

TEST_F(MessagingTest, ExpiredInviteIsRefusedClearly) {
  auto invite = (*alice_)->CreateInvite(1, 60, kSyncTimeout);
  ASSERT_TRUE(invite.ok());
  bob_->clock += 61;
  auto accepted = (*bob_)->AcceptInvite(invite->code, "Alice", kSyncTimeout);
  ASSERT_FALSE(accepted.ok());
  EXPECT_STREQ(accepted.error().message, "invite has expired");
}

TEST_F(MessagingTest, DisappearingMessagesAreRemovedWhenDue) {
  Connect();
  ASSERT_TRUE((*bob_)->SetExpiry("Alice", 3600).ok());
  ASSERT_TRUE((*alice_)->Send(kBob, "soon gone").ok());
  SyncOk(*alice_);
  SyncOk(*bob_);
  auto before = (*bob_)->Read("Alice");
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->size(), 1u);
  bob_->clock += 3601;
  auto after = (*bob_)->Read("Alice");
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());
}


TEST_F(MessagingTest, DirectInviteCardsNameTheAddressAndUpdatesFollowIt) {
  ASSERT_TRUE((*alice_)->SetDirectAddress(protocol::DirectAddress{"192.0.2.1", 7400}).ok());
  Connect(/*direct=*/true);
  auto b = FindContact(*bob_, "Alice");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->direct_address, "192.0.2.1:7400");
  auto a = FindContact(*alice_, kBob);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->direct_address, "");  // Bob advertises none
  // Alice moves: her card follows inside the session.
  ASSERT_TRUE((*alice_)->SetDirectAddress(protocol::DirectAddress{"2001:db8::7", 7401}).ok());
  SyncOk(*alice_);
  SyncOk(*bob_);
  b = FindContact(*bob_, "Alice");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->direct_address, "[2001:db8::7]:7401");
  EXPECT_EQ(b->key_refused_at, 0u);
  // No message row for a card.
  auto at_bob = (*bob_)->Read("Alice");
  ASSERT_TRUE(at_bob.ok());
  EXPECT_TRUE(at_bob->empty());
}

TEST_F(MessagingTest, ContactsWithoutDirectInviteNeverLearnTheAddress) {
  ASSERT_TRUE((*alice_)->SetDirectAddress(protocol::DirectAddress{"192.0.2.1", 7400}).ok());
  Connect(/*direct=*/false);
  ASSERT_TRUE((*alice_)->SetDirectAddress(protocol::DirectAddress{"192.0.2.9", 7400}).ok());
  SyncOk(*alice_);
  SyncOk(*bob_);
  auto b = FindContact(*bob_, "Alice");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->direct_address, "");
}

// DESIGN §4 / issue 5: a changed identity key is refused loudly, never
// accepted silently. Alice's device is given another identity (as someone
// holding her session state but not her identity key would present); the card
// it sends inside the session must not replace the key Bob knows.
TEST_F(MessagingTest, CardWithAChangedIdentityKeyIsRefusedLoudly) {
  ASSERT_TRUE((*alice_)->SetDirectAddress(protocol::DirectAddress{"192.0.2.1", 7400}).ok());
  Connect(/*direct=*/true);
  auto before = FindContact(*bob_, "Alice");
  ASSERT_TRUE(before.has_value());
  auto safety_before = (*bob_)->Safety("Alice", false);
  ASSERT_TRUE(safety_before.ok());

  auto other = protocol::GenerateIdentity(kAlice, crypto::SystemRandom());
  ASSERT_TRUE(other.ok());
  alice_->ReplaceIdentity(*other);
  ASSERT_TRUE(alice_->messenger.has_value());
  ASSERT_TRUE((*alice_)->SetDirectAddress(protocol::DirectAddress{"198.51.100.66", 7400}).ok());
  SyncOk(*alice_);
  SyncOk(*bob_);

  auto after = FindContact(*bob_, "Alice");
  ASSERT_TRUE(after.has_value());
  EXPECT_NE(after->key_refused_at, 0u) << "the new key was not flagged";
  EXPECT_EQ(after->fingerprint, before->fingerprint) << "the identity key was replaced";
  EXPECT_EQ(after->direct_address, "192.0.2.1:7400") << "the refused card was applied";
  auto safety_after = (*bob_)->Safety("Alice", false);
  ASSERT_TRUE(safety_after.ok());
  EXPECT_EQ(safety_after->safety_number, safety_before->safety_number);
  EXPECT_NE(safety_after->key_refused_at, 0u);
}

// DESIGN §9 / docs/relay.md "Rotating keys": clients follow a relay's signed
// key statement and store the new address (our relays, the queues we read and
// send to), so they keep working after the transition ends.
TEST_F(MessagingTest, RelayKeyRotationIsFollowedAndStored) {
  Connect();
  const std::uint16_t port = relay_->address().port;
  const auto old_key = relay_->address().noise_key;
  ASSERT_EQ(relay_->Stop(), 0);
  relay_.reset();
  auto rotated = RunProcess(RHIZOME_RELAY_BIN, {"rotate", "--data", (tmp_.path() / "relay").string(),
                                                "--transition", "1h"});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  relay_.emplace(tmp_.path() / "relay", tmp_.path() / "relay-2.log", port);
  ASSERT_TRUE(relay_->ok());
  const auto new_key = relay_->address().noise_key;
  ASSERT_NE(new_key, old_key);

  ASSERT_TRUE((*alice_)->Send(kBob, "after the rotation").ok());
  SyncOk(*alice_);  // follows the statement while uploading
  SyncOk(*bob_);    // follows it while fetching; stores the text, queues the receipt
  SyncOk(*alice_);  // the receipt
  for (Person* p : {&*alice_, &*bob_}) {
    auto relays = (*p)->ListRelays();
    ASSERT_TRUE(relays.ok());
    ASSERT_EQ(relays->size(), 1u);
    auto stored = protocol::ParseRelayAddress(relays->front().address);
    ASSERT_TRUE(stored.ok());
    EXPECT_EQ(stored->noise_key, new_key) << "the followed key was not stored";
  }
  // The queues moved with it: what is stored under the new address still flows
  // (a new Messenger connects with the stored address).
  bob_->Reopen();
  ASSERT_TRUE(bob_->messenger.has_value());
  ASSERT_TRUE((*bob_)->Send("Alice", "reply after the rotation").ok());
  SyncOk(*bob_);
  auto ra = SyncOk(*alice_);
  EXPECT_EQ(ra.received, 1u);
  auto at_alice = (*alice_)->Read(kBob);
  ASSERT_TRUE(at_alice.ok());
  bool delivered = false;
  for (const auto& m : *at_alice) {
    if (m.outgoing && m.text == "after the rotation") delivered = m.state == MessageState::kDelivered;
  }
  EXPECT_TRUE(delivered);
}

// Review finding: v1 has no Noise key rotation. A card update that keeps the
// identity key but names another Noise key (certified by that identity) would
// let a contact claim another contact's direct link; it is refused like an
// identity change.
TEST_F(MessagingTest, CardWithAChangedNoiseKeyIsRefused) {
  ASSERT_TRUE((*alice_)->SetDirectAddress(protocol::DirectAddress{"192.0.2.1", 7400}).ok());
  Connect(/*direct=*/true);
  auto id = storage::LoadIdentity(alice_->profile->db());
  ASSERT_TRUE(id.ok());
  id->noise = crypto::X25519Generate(crypto::SystemRandom());
  auto cert = crypto::Ed25519Sign(id->signing.secret_key,
                                  protocol::DeviceCertificateMessage(id->noise.public_key));
  ASSERT_TRUE(cert.ok());
  id->certificate = *cert;
  alice_->ReplaceIdentity(*id);
  ASSERT_TRUE(alice_->messenger.has_value());
  ASSERT_TRUE((*alice_)->SetDirectAddress(protocol::DirectAddress{"198.51.100.66", 7400}).ok());
  SyncOk(*alice_);
  SyncOk(*bob_);
  auto after = FindContact(*bob_, "Alice");
  ASSERT_TRUE(after.has_value());
  EXPECT_NE(after->key_refused_at, 0u);
  EXPECT_EQ(after->direct_address, "192.0.2.1:7400") << "the card with a new Noise key was applied";
}

}  // namespace
}  // namespace rhizome::testing
