// A minimal synchronous relay client for integration tests: a real
// net::Channel (NKpsk0) to a relay address, with helpers that build and
// authorize relay commands exactly as docs/protocol/relay-commands.md says.
// Tests only; every wait is bounded by a deadline.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>

#include "rhizome/crypto/sign.h"
#include "rhizome/net/channel.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/relay_messages.h"

namespace rhizome::testing {

class RelayClient {
 public:
  // Connects; check ok() / error().
  explicit RelayClient(const protocol::RelayAddress& address);
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

 private:
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline);
  asio::awaitable<void> ReceiveLoop();

  asio::io_context io_;
  std::shared_ptr<net::Channel> channel_;
  Error error_{Errc::kInternal, ""};
  std::deque<protocol::RelayReply> inbox_;
  bool closed_ = false;
};

}  // namespace rhizome::testing
