// client::Messenger when a relay refuses a quiet ACK (RelayPort::AckQuietly).
// The refusal never reaches the messenger as an error: it only shows as
// RelayPort::quiet_acks_refused() growing, and the refused message stays
// unacknowledged on the connection, already pushed, so the relay does not
// push it again. The messenger must then forget which queues it subscribed on
// that connection, so that its next pass subscribes every queue afresh (a SUB
// restarts delivery from the oldest stored message). The message then comes
// again, is dropped as a duplicate (shown once) and is acknowledged.
// Real profiles (SQLCipher), a real first contact and ratchet; the relay is an
// in-memory model of its queue semantics, trimmed from
// tests/fuzz/messenger_fuzz.cc (which covers this path only among random
// schedules), that counts SUBs and pushes per queue and refuses the quiet
// ACKs a test asks it to. Every pass is a single round (max_rounds = 1), so
// "the next pass" is exactly one more Receive.
#include "rhizome/client/messenger.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "rhizome/client/relay_port.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/sign.h"
#include "rhizome/protocol/identity.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/relay_messages.h"
#include "rhizome/storage/identity_store.h"
#include "rhizome/storage/profile.h"
#include "test_support.h"

namespace rhizome::client {
namespace {

namespace fs = std::filesystem;

constexpr auto kSyncTimeout = std::chrono::seconds(30);

// One stored message: its queue (the recipient id) and its message id.
using StoredMessage = std::pair<protocol::Id, protocol::Id>;

// The relay's queues, in memory. One instance serves every connection (each
// messenger gets its own FakePort on it).
struct FakeRelay {
  struct Queue {
    protocol::PublicKey recipient_key{};
    protocol::Id sender_id{};
    Bytes send_key;  // empty until KEY
    std::deque<std::pair<protocol::Id, Bytes>> messages;
  };
  std::map<protocol::Id, Queue> by_recipient;
  std::map<protocol::Id, protocol::Id> sender_to_recipient;
  std::uint64_t next = 1;

  // What the tests look at: SUBs per queue and pushes per message, over all
  // connections (a queue has one reader, so these are that reader's), and
  // quiet ACKs refused (over all connections).
  std::map<protocol::Id, int> subscribes;
  std::map<StoredMessage, int> pushes;
  int quiet_acks_refused = 0;
  // What the tests set: how many more quiet ACKs to refuse, per queue; and
  // the connection generation (raising it closes every open port).
  std::map<protocol::Id, int> refuse_quiet_acks;
  int generation = 0;
  int connects = 0;

  protocol::Id NewId() {
    protocol::Id id{};
    for (std::size_t i = 0; i < 8; ++i) id[i] = static_cast<std::uint8_t>(next >> (8 * i));
    id[15] = 0x5a;
    ++next;
    return id;
  }
  std::set<StoredMessage> Stored() const {
    std::set<StoredMessage> out;
    for (const auto& [rid, q] : by_recipient) {
      for (const auto& m : q.messages) out.emplace(rid, m.first);
    }
    return out;
  }
  bool Holds(const StoredMessage& m) const { return Stored().count(m) != 0; }
};

const Error kNotFound{Errc::kNotFound, "no such queue or not authorized"};

// One connection to the FakeRelay, with RelayLink's contract (relay_port.h).
class FakePort final : public RelayPort {
 public:
  explicit FakePort(FakeRelay& relay) : relay_(relay), generation_(relay.generation) {
    ++relay_.connects;
  }

  // Open until the test raises the relay's generation (a reconnect also
  // resets the messenger's subscriptions, so the tests that look at refusals
  // alone keep it).
  bool CheckOpen() override { return generation_ == relay_.generation; }
  Result<NewQueueResult> NewQueue(const crypto::Ed25519KeyPair& recipient) override {
    NewQueueResult r{relay_.NewId(), relay_.NewId()};
    FakeRelay::Queue q;
    q.recipient_key = recipient.public_key;
    q.sender_id = r.sender_id;
    relay_.by_recipient[r.recipient_id] = std::move(q);
    relay_.sender_to_recipient[r.sender_id] = r.recipient_id;
    return r;
  }
  Status SetQueueKey(const protocol::Id& rid, const crypto::Ed25519KeyPair& recipient,
                     ByteSpan send_key) override {
    auto it = relay_.by_recipient.find(rid);
    if (it == relay_.by_recipient.end() || it->second.recipient_key != recipient.public_key ||
        !it->second.send_key.empty()) {
      return kNotFound;
    }
    it->second.send_key.assign(send_key.begin(), send_key.end());
    return {};
  }
  Result<NewQueueResult> CreateQueue(const crypto::Ed25519KeyPair& recipient,
                                     ByteSpan send_key) override {
    auto r = NewQueue(recipient);
    if (!r) return r;
    RHIZOME_TRY(SetQueueKey(r->recipient_id, recipient, send_key));
    return r;
  }
  Status Send(const protocol::Id& sender_id, ByteSpan send_key, const Bytes& blob) override {
    auto s = relay_.sender_to_recipient.find(sender_id);
    if (s == relay_.sender_to_recipient.end()) return kNotFound;
    auto& q = relay_.by_recipient[s->second];
    if (q.send_key.empty() || !std::equal(send_key.begin(), send_key.end(), q.send_key.begin(),
                                          q.send_key.end())) {
      return kNotFound;
    }
    EXPECT_TRUE(protocol::IsRelayBlobSize(blob.size())) << blob.size();
    q.messages.emplace_back(relay_.NewId(), blob);
    return {};
  }
  Result<std::optional<protocol::QueueMessage>> Get(const protocol::Id& rid,
                                                    const crypto::SecretBytes&) override {
    auto it = relay_.by_recipient.find(rid);
    if (it == relay_.by_recipient.end()) return kNotFound;
    if (it->second.messages.empty()) return std::optional<protocol::QueueMessage>();
    protocol::QueueMessage m;
    m.recipient_id = rid;
    m.message_id = it->second.messages.front().first;
    m.blob = it->second.messages.front().second;
    return std::optional<protocol::QueueMessage>(std::move(m));
  }
  Status Ack(const protocol::Id& rid, const protocol::Id& message_id) override {
    auto it = relay_.by_recipient.find(rid);
    if (it == relay_.by_recipient.end()) return kNotFound;
    auto& msgs = it->second.messages;
    for (auto m = msgs.begin(); m != msgs.end(); ++m) {
      if (m->first == message_id) {
        msgs.erase(m);
        break;
      }
    }
    return {};
  }
  // A quiet ACK: a refusal (ordered by the test, or of an unknown queue) never
  // reaches the caller; like RelayLink, the port only counts it. A refused
  // message stays stored, and stays "pushed" on this connection.
  Status AckQuietly(const protocol::Id& rid, const protocol::Id& message_id) override {
    if (auto r = relay_.refuse_quiet_acks.find(rid);
        r != relay_.refuse_quiet_acks.end() && r->second > 0) {
      --r->second;
      ++quiet_refused_;
      ++relay_.quiet_acks_refused;
      return {};
    }
    if (!Ack(rid, message_id)) {
      ++quiet_refused_;
      ++relay_.quiet_acks_refused;
    }
    return {};
  }
  std::size_t quiet_acks_refused() const override { return quiet_refused_; }
  // SUB: (re)starts delivery of the queue's stored messages on this port.
  Status Subscribe(const protocol::Id& rid, const crypto::SecretBytes&) override {
    if (relay_.by_recipient.count(rid) == 0) return kNotFound;
    ++relay_.subscribes[rid];
    subscribed_.insert(rid);
    for (auto it = pushed_.begin(); it != pushed_.end();) {
      it = it->first == rid ? pushed_.erase(it) : std::next(it);
    }
    return {};
  }
  // The oldest message of a subscribed queue not yet pushed on this port
  // (whether or not it was acknowledged since: an unacknowledged one comes
  // again only after a new SUB).
  Result<std::optional<protocol::QueueMessage>> NextPushed(std::chrono::milliseconds) override {
    for (const auto& rid : subscribed_) {
      auto it = relay_.by_recipient.find(rid);
      if (it == relay_.by_recipient.end()) continue;
      for (const auto& [mid, blob] : it->second.messages) {
        if (pushed_.count({rid, mid}) != 0) continue;
        pushed_.insert({rid, mid});
        ++relay_.pushes[{rid, mid}];
        protocol::QueueMessage m;
        m.recipient_id = rid;
        m.message_id = mid;
        m.blob = blob;
        return std::optional<protocol::QueueMessage>(std::move(m));
      }
    }
    return std::optional<protocol::QueueMessage>();
  }
  Status DeleteQueue(const protocol::Id& rid, const crypto::SecretBytes&) override {
    auto it = relay_.by_recipient.find(rid);
    if (it == relay_.by_recipient.end()) return kNotFound;
    relay_.sender_to_recipient.erase(it->second.sender_id);
    relay_.by_recipient.erase(it);
    return {};
  }

 private:
  FakeRelay& relay_;
  const int generation_;
  std::set<protocol::Id> subscribed_;
  std::set<StoredMessage> pushed_;  // pushed on this connection since the queue's last SUB
  std::size_t quiet_refused_ = 0;
};

Messenger::ConnectFn ConnectTo(FakeRelay& relay) {
  return [&relay](const protocol::RelayAddress&, std::uint64_t,
                  std::chrono::milliseconds) -> Result<std::unique_ptr<RelayPort>> {
    return std::unique_ptr<RelayPort>(std::make_unique<FakePort>(relay));
  };
}

// A fixed, valid relay address (never dialled: the connector is in memory).
std::string RelayText() {
  protocol::RelayAddress a;
  a.noise_key.fill(9);
  auto kp = crypto::Ed25519FromSeed(ByteArray<32>{});
  if (!kp) {
    ADD_FAILURE() << kp.error().message;
    return {};
  }
  a.signing_key = kp->public_key;
  a.host = "127.0.0.1";
  a.port = 7750;
  a.versions = {1};
  auto text = protocol::FormatRelayAddress(a);
  if (!text) {
    ADD_FAILURE() << text.error().message;
    return {};
  }
  return *text;
}

// A profile with an identity and a messenger on it, reaching `relay`, with a
// clock that stands still (no retry or receipt resend becomes due).
struct Person {
  Person(FakeRelay& relay, const fs::path& dir, const std::string& name, std::uint64_t seed)
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
    const std::string relay_text = RelayText();
    ASSERT_FALSE(relay_text.empty());
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
  FakeRelay relay_;  // outlives the messengers (their ports point into it)
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
