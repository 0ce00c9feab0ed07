// The relay client of the integration tests: a thin layer over the client's
// own client::RelayLink (client/include/rhizome/client/relay_link.h), so tests
// and the real client share one implementation of the relay connection, the
// command authorizers and key-statement following.
//
// RelayClient keeps the constructor form the tests were written against
// (connect in the constructor, then ok() / error()); every other member
// forwards to the RelayLink. When the connection failed, calls return nothing
// (nullopt, zeros, false) and address() is the address given.
// Tests only; every wait is bounded by a deadline.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "rhizome/client/relay_link.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/crypto/sign.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/relay_key_statement.h"
#include "rhizome/protocol/relay_messages.h"

namespace rhizome::testing {

// How long a test client waits for the connection and handshake.
inline constexpr std::chrono::milliseconds kTestRelayConnectDeadline{10'000};

class RelayClient {
 public:
  // Connects; check ok() / error(). `followed_serial` is the serial of the
  // last key statement already followed for this address (0 = none).
  explicit RelayClient(const protocol::RelayAddress& address, std::uint64_t followed_serial = 0,
                       std::chrono::milliseconds deadline = kTestRelayConnectDeadline);

  bool ok() const { return link_.has_value(); }
  const Error& error() const { return error_; }
  // Precondition: ok().
  client::RelayLink& link() { return *link_; }

  ByteSpan handshake_hash() const { return ok() ? link_->handshake_hash() : ByteSpan(); }

  std::optional<protocol::RelayReply> Call(
      protocol::RelayCommandBody body,
      std::chrono::milliseconds deadline = client::kDefaultRelayReplyTimeout);
  std::optional<protocol::RelayReply> NextPush(std::chrono::milliseconds deadline);
  protocol::Signature Sign(const crypto::SecretBytes& ed25519_secret, const protocol::Id& corr_id,
                           ByteSpan entity_id, protocol::RelayCommandCode code) const;
  protocol::Mac Mac(ByteSpan key, const protocol::Id& corr_id, ByteSpan entity_id,
                    protocol::RelayCommandCode code) const;
  template <class MakeBody>
  std::optional<protocol::RelayReply> CallWith(
      MakeBody make, std::chrono::milliseconds deadline = client::kDefaultRelayReplyTimeout) {
    protocol::Id corr = NewCorrId();
    return CallWithCorr(corr, make(corr), deadline);
  }
  std::optional<protocol::RelayReply> CallWithCorr(
      const protocol::Id& corr, protocol::RelayCommandBody body,
      std::chrono::milliseconds deadline = client::kDefaultRelayReplyTimeout);
  static protocol::Id NewCorrId() { return client::RelayLink::NewCorrId(); }
  void Close() {
    if (link_) link_->Close();
  }

  // ---- relay key statements (see client::RelayLink) ------------------------
  const protocol::RelayAddress& address() const { return ok() ? link_->address() : given_; }
  std::uint64_t followed_serial() const { return ok() ? link_->followed_serial() : given_serial_; }
  std::size_t statements_followed() const { return ok() ? link_->statements_followed() : 0; }
  std::size_t statements_ignored() const { return ok() ? link_->statements_ignored() : 0; }
  Errc last_ignored_reason() const { return ok() ? link_->last_ignored_reason() : Errc::kInternal; }
  bool WaitForStatements(std::size_t n, std::chrono::milliseconds deadline) {
    return ok() && link_->WaitForStatements(n, deadline);
  }
  void OnKeyStatement(const protocol::RelayKeyStatement& statement) {
    if (link_) link_->OnKeyStatement(statement);
  }

 private:
  protocol::RelayAddress given_;
  std::uint64_t given_serial_ = 0;
  std::optional<client::RelayLink> link_;
  Error error_{Errc::kInternal, ""};
};

// A queue on a relay with its recipient key and send key, as a test client
// keeps it.
struct RelayQueue {
  crypto::Ed25519KeyPair recipient = crypto::Ed25519Generate(crypto::SystemRandom());
  crypto::SecretBytes send_key = crypto::SecretBytes::Random(crypto::SystemRandom(), 32);
  protocol::Id recipient_id{};
  protocol::Id sender_id{};
};

// NEW + KEY on `c` (RelayLink::CreateQueue), filling q's ids. False on any
// failure.
bool MakeQueue(RelayClient& c, RelayQueue& q);
// SEND `blob` to q (MAC'd with its send key); the relay's reply as it came,
// so tests can look at its error code (none if it did not come by `deadline`).
std::optional<protocol::RelayReply> SendTo(
    RelayClient& c, const RelayQueue& q, const Bytes& blob,
    std::chrono::milliseconds deadline = client::kDefaultRelayReplyTimeout);
// SUB to q (signed with its recipient key); the relay's reply as it came.
std::optional<protocol::RelayReply> SubscribeTo(RelayClient& c, const RelayQueue& q);

}  // namespace rhizome::testing
