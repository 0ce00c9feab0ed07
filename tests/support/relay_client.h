// A minimal synchronous relay client for integration tests: a real
// net::Channel (NKpsk0) to a relay address, with helpers that build and
// authorize relay commands exactly as docs/protocol/relay-commands.md says.
// It follows relay key statements (docs/protocol/relay-key-statement.md) as a
// real client must: a pushed statement is verified against the signing key
// of the address it holds and, if newer than the last one followed, replaces
// the stored address's Noise key and PSK; anything else is counted and ignored.
// Tests only; every wait is bounded by a deadline.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>

#include "rhizome/crypto/random.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/crypto/sign.h"
#include "rhizome/net/channel.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/relay_key_statement.h"
#include "rhizome/protocol/relay_messages.h"

namespace rhizome::testing {

class RelayClient {
 public:
  // Connects; check ok() / error(). `followed_serial` is the serial of the
  // last key statement already followed for this address (0 = none).
  explicit RelayClient(const protocol::RelayAddress& address, std::uint64_t followed_serial = 0);
  ~RelayClient();

  bool ok() const { return channel_ != nullptr; }
  const Error& error() const { return error_; }
  ByteSpan handshake_hash() const;

  // Sends one command with a fresh corr id and waits for the reply carrying
  // it. Pushed replies (no corr id) met on the way are kept for NextPush().
  std::optional<protocol::RelayReply> Call(protocol::RelayCommandBody body,
                                           std::chrono::milliseconds deadline = std::chrono::seconds(10));
  // The next pushed reply, waiting up to `deadline`.
  std::optional<protocol::RelayReply> NextPush(std::chrono::milliseconds deadline);

  // Authorizers bound to this connection (RelayAuthMessage over h, corr, entity, code).
  protocol::Signature Sign(const crypto::SecretBytes& ed25519_secret, const protocol::Id& corr_id,
                           ByteSpan entity_id, protocol::RelayCommandCode code) const;
  protocol::Mac Mac(ByteSpan key, const protocol::Id& corr_id, ByteSpan entity_id,
                    protocol::RelayCommandCode code) const;
  // Convenience: builds a command body whose authorizer needs the corr id,
  // then calls it.
  template <class MakeBody>
  std::optional<protocol::RelayReply> CallWith(MakeBody make) {
    protocol::Id corr = NewCorrId();
    return CallWithCorr(corr, make(corr));
  }
  std::optional<protocol::RelayReply> CallWithCorr(const protocol::Id& corr,
                                                   protocol::RelayCommandBody body,
                                                   std::chrono::milliseconds deadline =
                                                       std::chrono::seconds(10));
  static protocol::Id NewCorrId();
  void Close();

  // ---- relay key statements ---------------------------------------------
  // The stored address: the one given, updated by every statement followed.
  const protocol::RelayAddress& address() const { return address_; }
  std::uint64_t followed_serial() const { return followed_serial_; }
  std::size_t statements_followed() const { return statements_followed_; }
  std::size_t statements_ignored() const { return statements_ignored_; }
  // Why the last ignored statement was ignored (kAuthenticationFailed: not
  // signed by the relay's key; kAlreadyExists: not newer; ...).
  Errc last_ignored_reason() const { return last_ignored_reason_; }
  // Waits until `n` statements in all have been followed or ignored.
  bool WaitForStatements(std::size_t n, std::chrono::milliseconds deadline);
  // What the receive loop does with a pushed statement (public so a test can
  // hand one in directly, too).
  void OnKeyStatement(const protocol::RelayKeyStatement& statement);

 private:
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline);
  asio::awaitable<void> ReceiveLoop();

  asio::io_context io_;
  std::shared_ptr<net::Channel> channel_;
  Error error_{Errc::kInternal, ""};
  std::deque<protocol::RelayReply> inbox_;
  bool closed_ = false;
  protocol::RelayAddress address_;
  std::uint64_t followed_serial_ = 0;
  std::size_t statements_followed_ = 0;
  std::size_t statements_ignored_ = 0;
  Errc last_ignored_reason_ = Errc::kInternal;
};

// A queue on a relay with its recipient key and send key, as a test client
// keeps it.
struct RelayQueue {
  crypto::Ed25519KeyPair recipient = crypto::Ed25519Generate(crypto::SystemRandom());
  crypto::SecretBytes send_key = crypto::SecretBytes::Random(crypto::SystemRandom(), 32);
  protocol::Id recipient_id{};
  protocol::Id sender_id{};
};

// NEW + KEY on `c`, filling q's ids. False on any unexpected reply.
bool MakeQueue(RelayClient& c, RelayQueue& q);
// SEND `blob` to q (MAC'd with its send key); the reply.
std::optional<protocol::RelayReply> SendTo(RelayClient& c, const RelayQueue& q, const Bytes& blob);
// SUB to q (signed with its recipient key); the reply.
std::optional<protocol::RelayReply> SubscribeTo(RelayClient& c, const RelayQueue& q);

}  // namespace rhizome::testing
