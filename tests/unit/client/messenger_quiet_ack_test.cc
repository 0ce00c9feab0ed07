// client::Messenger when a relay refuses a quiet ACK (RelayPort::AckQuietly).
// The refusal never reaches the messenger as an error: it only shows as
// RelayPort::quiet_acks_refused() growing, and the refused message stays
// unacknowledged on the connection, already pushed, so the relay does not
// push it again. The messenger must then forget which queues it subscribed on
// that connection, so that its next pass subscribes every queue afresh (a SUB
// restarts delivery from the oldest stored message). The message then comes
// again, is dropped as a duplicate (shown once) and is acknowledged.
// Real profiles (SQLCipher), a real first contact and ratchet; the relay is
// the in-memory model of its queue semantics that tests/fuzz/messenger_fuzz.cc
// uses too (tests/support/memory_relay.h; the fuzz target covers this path
// only among random schedules), which counts SUBs and pushes per queue and
// refuses the quiet ACKs a test asks it to. Every pass is a single round
// (max_rounds = 1), so "the next pass" is exactly one more Receive.
#include "rhizome/client/messenger.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "memory_relay.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/identity.h"
#include "rhizome/storage/identity_store.h"
#include "rhizome/storage/profile.h"
#include "test_support.h"

namespace rhizome::client {
namespace {

namespace fs = std::filesystem;

constexpr auto kSyncTimeout = std::chrono::seconds(30);

using rhizome::testing::ConnectTo;
using rhizome::testing::MemoryRelay;
using rhizome::testing::StoredMessage;

// A profile with an identity and a messenger on it, reaching `relay`, with a
// clock that stands still (no retry or receipt resend becomes due).
struct Person {
  Person(MemoryRelay& relay, const fs::path& dir, const std::string& name, std::uint64_t seed)
      : rng(seed) {
    auto p = storage::Profile::Create(dir, AsBytes("pass"), crypto::Argon2idParams{1, 8192}, rng);
    if (!p) {
      ADD_FAILURE() << p.error().message;
      return;
    }
    profile.emplace(std::move(*p));
    auto id = protocol::GenerateIdentity(name, rng);
    if (!id || !storage::SaveIdentity(profile->db(), *id)) {
      ADD_FAILURE() << "identity not saved";
      return;
    }
    auto m = Messenger::Open(*profile, rng, ConnectTo(relay), [this] { return clock; });
    if (!m) {
      ADD_FAILURE() << m.error().message;
      return;
    }
    messenger.emplace(std::move(*m));
  }
  Messenger* operator->() { return &*messenger; }

  std::uint64_t clock = 1'800'000'000;
  crypto::DeterministicRandom rng;
  std::optional<storage::Profile> profile;
  std::optional<Messenger> messenger;
};

SyncReport SyncOk(Person& p, int max_rounds) {
  auto r = p->Sync(kSyncTimeout, max_rounds);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : SyncReport{};
}

// How many times `p` shows `text` as an incoming message.
int TimesShown(Person& p, const std::string& text) {
  auto msgs = p->Read(std::nullopt);
  EXPECT_TRUE(msgs.ok());
  if (!msgs) return -1;
  return static_cast<int>(std::count_if(msgs->begin(), msgs->end(), [&](const MessageInfo& m) {
    return !m.outgoing && m.text == text;
  }));
}

class MessengerQuietAck : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init().ok());
    const auto address = rhizome::testing::MemoryRelayAddressText();
    ASSERT_TRUE(address.ok()) << address.error().message;
    const std::string& relay_text = *address;
    alice_.emplace(relay_, tmp_.path() / "alice", "Alice", 1);
    bob_.emplace(relay_, tmp_.path() / "bob", "Bob", 2);
    ASSERT_TRUE(alice_->messenger.has_value());
    ASSERT_TRUE(bob_->messenger.has_value());
    ASSERT_TRUE((*alice_)->AddRelay(relay_text).ok());
    ASSERT_TRUE((*bob_)->AddRelay(relay_text).ok());

    // First contact as the fuzz target makes it: Alice invites, Bob accepts,
    // two passes each. Bob reads the confirmation on his reply queue, so that
    // queue (where Alice's texts go) is subscribed on his cached connection.
    auto invite = (*alice_)->CreateInvite(1, 3600, kSyncTimeout);
    ASSERT_TRUE(invite.ok()) << invite.error().message;
    auto accepted = (*bob_)->AcceptInvite(invite->code, "Alice", kSyncTimeout);
    ASSERT_TRUE(accepted.ok()) << accepted.error().message;
    for (int i = 0; i < 2; ++i) {
      SyncOk(*alice_, 8);
      SyncOk(*bob_, 8);
    }
    auto at_alice = (*alice_)->ListContacts();
    auto at_bob = (*bob_)->ListContacts();
    ASSERT_TRUE(at_alice.ok() && at_alice->size() == 1);
    ASSERT_TRUE(at_bob.ok() && at_bob->size() == 1);
    ASSERT_EQ(at_alice->front().status, ContactStatus::kConfirmed);
    ASSERT_EQ(at_bob->front().status, ContactStatus::kConfirmed);
    bob_alias_ = at_alice->front().alias;
    refused_before_ = relay_.quiet_acks_refused;
  }
  // No SEND was refused for its blob's size (the messenger pads to a relay
  // blob size; the model refuses any other, as the relay does).
  void TearDown() override { EXPECT_EQ(relay_.bad_blob_sizes, 0); }

  // Alice sends `text` and uploads it (one pass); where it is stored (Bob's
  // queue and the message id), found as the one message the pass added.
  std::optional<StoredMessage> AliceSends(const std::string& text) {
    auto sent = (*alice_)->Send(bob_alias_, text);
    EXPECT_TRUE(sent.ok()) << (sent.ok() ? "" : sent.error().message);
    if (!sent) return std::nullopt;
    const auto before = relay_.Stored();
    SyncOk(*alice_, 1);
    std::vector<StoredMessage> added;
    for (const auto& m : relay_.Stored()) {
      if (before.count(m) == 0) added.push_back(m);
    }
    EXPECT_EQ(added.size(), 1u) << "Alice's pass should store exactly her text";
    if (added.size() != 1) return std::nullopt;
    return added.front();
  }

  rhizome::testing::TempDir tmp_;
  MemoryRelay relay_;  // outlives the messengers (their ports point into it)
  std::optional<Person> alice_;
  std::optional<Person> bob_;
  std::string bob_alias_;  // Alice's name for Bob
  int refused_before_ = 0;
};

TEST_F(MessengerQuietAck, ARefusedQuietAckMakesTheNextPassSubscribeAgain) {
  const std::string text = "refused once, delivered again";
  const auto stored = AliceSends(text);
  ASSERT_TRUE(stored.has_value());
  const protocol::Id queue = stored->first;
  const int subs_before = relay_.subscribes[queue];
  ASSERT_GE(subs_before, 1) << "Bob's queue should have been subscribed during first contact";
  relay_.refuse_quiet_acks[queue] = 1;

  // Pass 1: Bob stores and shows the text; the relay refuses its quiet ACK,
  // which Bob sees only as the port's count growing. The message stays
  // stored and, already pushed, is not pushed again on this subscription.
  const auto first = SyncOk(*bob_, 1);
  EXPECT_EQ(first.received, 1u);
  EXPECT_EQ(TimesShown(*bob_, text), 1);
  ASSERT_EQ(relay_.quiet_acks_refused, refused_before_ + 1);
  ASSERT_TRUE(relay_.Holds(*stored));
  // The queue was subscribed already: the SUB below is the refusal's doing.
  EXPECT_EQ(relay_.subscribes[queue], subs_before);
  EXPECT_EQ(relay_.pushes[*stored], 1);

  // Pass 2: the queue is subscribed afresh, which restarts delivery; the text
  // comes again, is recognised as a duplicate (not stored or shown twice) and
  // is acknowledged.
  const auto second = SyncOk(*bob_, 1);
  EXPECT_EQ(relay_.subscribes[queue], subs_before + 1);
  EXPECT_EQ(relay_.pushes[*stored], 2);
  EXPECT_FALSE(relay_.Holds(*stored)) << "the redelivered text should have been acknowledged";
  EXPECT_EQ(second.received, 0u);
  EXPECT_EQ(TimesShown(*bob_, text), 1);
  EXPECT_EQ(relay_.quiet_acks_refused, refused_before_ + 1);

  // Pass 3: no new refusal, so the fresh subscription stands (one SUB per
  // refusal, not one per pass from now on).
  SyncOk(*bob_, 1);
  EXPECT_EQ(relay_.subscribes[queue], subs_before + 1);
  EXPECT_EQ(TimesShown(*bob_, text), 1);
}

TEST_F(MessengerQuietAck, AnAcceptedQuietAckLeavesTheSubscriptionInPlace) {
  const std::string text = "acknowledged at once";
  const auto stored = AliceSends(text);
  ASSERT_TRUE(stored.has_value());
  const protocol::Id queue = stored->first;
  const int subs_before = relay_.subscribes[queue];

  const auto first = SyncOk(*bob_, 1);
  EXPECT_EQ(first.received, 1u);
  EXPECT_FALSE(relay_.Holds(*stored));
  EXPECT_EQ(relay_.quiet_acks_refused, refused_before_);

  // SUB costs a signature: with nothing refused, further passes rely on the
  // subscription they have.
  for (int pass = 0; pass < 2; ++pass) SyncOk(*bob_, 1);
  EXPECT_EQ(relay_.subscribes[queue], subs_before);
  EXPECT_EQ(relay_.pushes[*stored], 1);
  EXPECT_EQ(TimesShown(*bob_, text), 1);
}

// A new connection counts its refusals from zero. A refusal on it must be
// noticed even when the old connection's count, last seen, was the same
// number (one each): the messenger forgets what it saw of a connection when
// it replaces it.
TEST_F(MessengerQuietAck, ARefusalOnANewConnectionIsNoticedAfterOneOnTheOld) {
  const std::string text1 = "refused on the first connection";
  const auto stored1 = AliceSends(text1);
  ASSERT_TRUE(stored1.has_value());
  const protocol::Id queue = stored1->first;
  relay_.refuse_quiet_acks[queue] = 1;
  SyncOk(*bob_, 1);  // refused: the port counts 1
  SyncOk(*bob_, 1);  // subscribed afresh, redelivered, acknowledged
  ASSERT_FALSE(relay_.Holds(*stored1));
  ASSERT_EQ(relay_.quiet_acks_refused, refused_before_ + 1);

  // Every connection closes; both sides connect again on their next pass.
  const int connects_before = relay_.connects;
  ++relay_.generation;
  const std::string text2 = "refused on the second connection";
  const auto stored2 = AliceSends(text2);
  ASSERT_TRUE(stored2.has_value());
  ASSERT_EQ(stored2->first, queue);
  relay_.refuse_quiet_acks[queue] = 1;
  SyncOk(*bob_, 1);  // reconnects, subscribes, is pushed text2; refused: the new port counts 1
  ASSERT_EQ(relay_.connects, connects_before + 2) << "Alice and Bob should each have reconnected";
  ASSERT_EQ(relay_.quiet_acks_refused, refused_before_ + 2);
  ASSERT_TRUE(relay_.Holds(*stored2));
  EXPECT_EQ(TimesShown(*bob_, text2), 1);
  const int subs_after_reconnect = relay_.subscribes[queue];

  SyncOk(*bob_, 1);
  EXPECT_EQ(relay_.subscribes[queue], subs_after_reconnect + 1)
      << "the refusal on the new connection went unnoticed";
  EXPECT_FALSE(relay_.Holds(*stored2)) << "the redelivered text should have been acknowledged";
  EXPECT_EQ(TimesShown(*bob_, text2), 1);
}

}  // namespace
}  // namespace rhizome::client
