// An in-memory model of a relay's queue semantics behind client::RelayPort,
// for the tests and fuzz targets that drive client::Messenger without a
// network: client/include/rhizome/client/relay_port.h is the contract (GET
// returns the oldest message until it is acknowledged; SEND needs the queue's
// send key; a SUB restarts delivery from the oldest stored message; a quiet
// ACK's refusal only shows as the port's count growing).
//
// One MemoryRelay serves every connection; each messenger connects through
// ConnectTo() and gets its own MemoryRelayPort on it. The relay's state is
// plain data, so a test or fuzz target can look at it (SUBs per queue, pushes
// per message) and damage it (drop, duplicate, reorder or corrupt stored
// blobs; refuse quiet ACKs; close every connection).
//
// Header-only and without GoogleTest, so that fuzz targets can use it too.
// Used by tests/unit/client/messenger_quiet_ack_test.cc and
// tests/fuzz/messenger_fuzz.cc.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "rhizome/client/messenger.h"
#include "rhizome/client/relay_port.h"
#include "rhizome/crypto/sign.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/relay_messages.h"

namespace rhizome::testing {

// One stored message: its queue (the recipient id) and its message id.
using StoredMessage = std::pair<protocol::Id, protocol::Id>;

struct MemoryRelay {
  struct Queue {
    protocol::PublicKey recipient_key{};
    protocol::Id sender_id{};
    Bytes send_key;  // empty until KEY
    std::deque<std::pair<protocol::Id, Bytes>> messages;
  };
  std::map<protocol::Id, Queue> by_recipient;
  std::map<protocol::Id, protocol::Id> sender_to_recipient;
  std::uint64_t next = 1;

  // What callers look at: connections made; SUBs per queue and pushes per
  // message, over all connections (a queue has one reader, so these are that
  // reader's); quiet ACKs refused and SENDs refused for a blob that is not of
  // a relay blob size (a client bug: a caller should expect none), over all
  // connections.
  int connects = 0;
  std::map<protocol::Id, int> subscribes;
  std::map<StoredMessage, int> pushes;
  int quiet_acks_refused = 0;
  int bad_blob_sizes = 0;
  // What callers set: how many more quiet ACKs to refuse, per queue; and the
  // connection generation (raising it closes every open port).
  std::map<protocol::Id, int> refuse_quiet_acks;
  int generation = 0;

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
  // Every stored blob as (queue, index in that queue), queue by queue.
  std::vector<std::pair<protocol::Id, std::size_t>> AllBlobs() const {
    std::vector<std::pair<protocol::Id, std::size_t>> out;
    for (const auto& [rid, q] : by_recipient) {
      for (std::size_t i = 0; i < q.messages.size(); ++i) out.emplace_back(rid, i);
    }
    return out;
  }
};

inline const Error kMemoryRelayNotFound{Errc::kNotFound, "no such queue or not authorized"};

// One connection to a MemoryRelay, with RelayLink's contract (relay_port.h).
class MemoryRelayPort final : public client::RelayPort {
 public:
  explicit MemoryRelayPort(MemoryRelay& relay) : relay_(relay), generation_(relay.generation) {
    ++relay_.connects;
  }

  // Open until the relay's generation is raised.
  bool CheckOpen() override { return generation_ == relay_.generation; }
  Result<client::NewQueueResult> NewQueue(const crypto::Ed25519KeyPair& recipient) override {
    client::NewQueueResult r{relay_.NewId(), relay_.NewId()};
    MemoryRelay::Queue q;
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
      return kMemoryRelayNotFound;
    }
    it->second.send_key.assign(send_key.begin(), send_key.end());
    return {};
  }
  Result<client::NewQueueResult> CreateQueue(const crypto::Ed25519KeyPair& recipient,
                                             ByteSpan send_key) override {
    auto r = NewQueue(recipient);
    if (!r) return r;
    RHIZOME_TRY(SetQueueKey(r->recipient_id, recipient, send_key));
    return r;
  }
  Status Send(const protocol::Id& sender_id, ByteSpan send_key, const Bytes& blob) override {
    auto s = relay_.sender_to_recipient.find(sender_id);
    if (s == relay_.sender_to_recipient.end()) return kMemoryRelayNotFound;
    auto& q = relay_.by_recipient[s->second];
    if (q.send_key.empty() || !std::equal(send_key.begin(), send_key.end(), q.send_key.begin(),
                                          q.send_key.end())) {
      return kMemoryRelayNotFound;
    }
    if (!protocol::IsRelayBlobSize(blob.size())) {
      ++relay_.bad_blob_sizes;
      return Error{Errc::kInvalidArgument, "the blob is not of a relay blob size"};
    }
    q.messages.emplace_back(relay_.NewId(), blob);
    return {};
  }
  Result<std::optional<protocol::QueueMessage>> Get(const protocol::Id& rid,
                                                    const crypto::SecretBytes&) override {
    auto it = relay_.by_recipient.find(rid);
    if (it == relay_.by_recipient.end()) return kMemoryRelayNotFound;
    if (it->second.messages.empty()) return std::optional<protocol::QueueMessage>();
    protocol::QueueMessage m;
    m.recipient_id = rid;
    m.message_id = it->second.messages.front().first;
    m.blob = it->second.messages.front().second;
    return std::optional<protocol::QueueMessage>(std::move(m));
  }
  Status Ack(const protocol::Id& rid, const protocol::Id& message_id) override {
    auto it = relay_.by_recipient.find(rid);
    if (it == relay_.by_recipient.end()) return kMemoryRelayNotFound;
    auto& msgs = it->second.messages;
    for (auto m = msgs.begin(); m != msgs.end(); ++m) {
      if (m->first == message_id) {
        msgs.erase(m);
        break;
      }
    }
    return {};
  }
  // A quiet ACK: a refusal (ordered through refuse_quiet_acks, or of an
  // unknown queue) never reaches the caller; like RelayLink, the port only
  // counts it. A refused message stays stored, and stays "pushed" on this
  // connection.
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
    if (relay_.by_recipient.count(rid) == 0) return kMemoryRelayNotFound;
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
    if (it == relay_.by_recipient.end()) return kMemoryRelayNotFound;
    relay_.sender_to_recipient.erase(it->second.sender_id);
    relay_.by_recipient.erase(it);
    return {};
  }

 private:
  MemoryRelay& relay_;
  const int generation_;
  std::set<protocol::Id> subscribed_;
  std::set<StoredMessage> pushed_;  // pushed on this connection since the queue's last SUB
  std::size_t quiet_refused_ = 0;
};

// A messenger's connector that reaches `relay` (which must outlive it).
inline client::Messenger::ConnectFn ConnectTo(MemoryRelay& relay) {
  return [&relay](const protocol::RelayAddress&, std::uint64_t,
                  std::chrono::milliseconds) -> Result<std::unique_ptr<client::RelayPort>> {
    return std::unique_ptr<client::RelayPort>(std::make_unique<MemoryRelayPort>(relay));
  };
}

// A fixed, valid relay address as text (never dialled: the connector is in
// memory).
inline Result<std::string> MemoryRelayAddressText() {
  protocol::RelayAddress a;
  a.noise_key.fill(9);
  auto kp = crypto::Ed25519FromSeed(ByteArray<32>{});
  if (!kp) return kp.error();
  a.signing_key = kp->public_key;
  a.host = "127.0.0.1";
  a.port = 7750;
  a.versions = {1};
  return protocol::FormatRelayAddress(a);
}

}  // namespace rhizome::testing
