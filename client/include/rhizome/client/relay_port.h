// RelayPort: the queue operations the messenger needs from one relay
// connection (docs/protocol/relay-commands.md). The real implementation is
// RelayLink (relay_link.h); the messenger's fuzz target supplies an in-memory
// relay with the same semantics so that it can run millions of two-party
// schedules without sockets. Every method has RelayLink's contract.
// Thread safety: one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/crypto/sign.h"
#include "rhizome/protocol/relay_messages.h"
#include "rhizome/protocol/wire_types.h"

namespace rhizome::client {

// A relay key statement this link verified and followed (DESIGN §9): the
// relay's address with its new keys, and the statement's serial.
struct FollowedRelay {
  std::string address;  // canonical rhizome-relay:// text
  std::uint64_t serial = 0;
};

struct NewQueueResult {
  protocol::Id recipient_id{};  // for SUB, GET, ACK, DEL (the recipient's side)
  protocol::Id sender_id{};     // for SEND (what the recipient hands to senders)
};

class RelayPort {
 public:
  virtual ~RelayPort() = default;
  // False once the connection is known to be closed (see RelayLink::CheckOpen).
  virtual bool CheckOpen() = 0;
  virtual Result<NewQueueResult> NewQueue(const crypto::Ed25519KeyPair& recipient) = 0;
  virtual Status SetQueueKey(const protocol::Id& recipient_id,
                             const crypto::Ed25519KeyPair& recipient, ByteSpan send_key) = 0;
  // NewQueue then SetQueueKey (the queue is deleted again if KEY fails).
  virtual Result<NewQueueResult> CreateQueue(const crypto::Ed25519KeyPair& recipient,
                                             ByteSpan send_key) = 0;
  virtual Status Send(const protocol::Id& sender_id, ByteSpan send_key, const Bytes& blob) = 0;
  virtual Result<std::optional<protocol::QueueMessage>> Get(
      const protocol::Id& recipient_id, const crypto::SecretBytes& recipient_ed25519_secret) = 0;
  virtual Status Ack(const protocol::Id& recipient_id, const protocol::Id& message_id) = 0;
  // ACK without waiting for the relay's answer (a quiet ACK: the relay
  // answers only a refusal, which is dropped). The deletion is durable once
  // any later command on this connection has its answer (a push is not an
  // answer); until then a relay crash may deliver the message again (the
  // messenger drops duplicates). By default an Ack() that waits.
  virtual Status AckQuietly(const protocol::Id& recipient_id, const protocol::Id& message_id) {
    return Ack(recipient_id, message_id);
  }
  // How many quiet ACKs this connection's relay refused so far (their
  // messages stay unacknowledged on it until the queue is subscribed again).
  virtual std::size_t quiet_acks_refused() const { return 0; }
  virtual Status DeleteQueue(const protocol::Id& recipient_id,
                             const crypto::SecretBytes& recipient_secret) = 0;
  // SUB: this connection becomes the queue's subscriber; its stored messages,
  // oldest first, then new ones, are pushed (NextPushed), a small window of
  // unacknowledged ones at a time. One signature per subscription, none per
  // message (DESIGN §9).
  virtual Status Subscribe(const protocol::Id& recipient_id,
                           const crypto::SecretBytes& recipient_secret) = 0;
  // The next pushed message of any queue this connection subscribed to,
  // waiting up to `wait`; nullopt if none came. Errors: kIo "relay connection
  // closed".
  virtual Result<std::optional<protocol::QueueMessage>> NextPushed(
      std::chrono::milliseconds wait) = 0;
  // The address to use from now on, if the relay pushed a key statement that
  // this link followed; nullopt otherwise. The messenger persists it.
  virtual std::optional<FollowedRelay> Followed() { return std::nullopt; }
};

}  // namespace rhizome::client
