// RelayLink: the client's connection to one relay (DESIGN §5, §9).
//
// One Noise_NKpsk0 channel to the relay named by a RelayAddress (its Noise
// static key pinned, its access key as the PSK, all zeros for an open relay),
// and the relay commands of docs/protocol/relay-commands.md on top of it:
// - high-level queue operations (CreateQueue, Send, Get, Ack, Subscribe,
//   DeleteQueue) that build and authorize each command and turn the reply into
//   a Result/Status with a static message;
// - the low-level layer they are built on (Call, CallWith, CallWithCorr,
//   NextPush, Sign, Mac), for tests and for commands without a high-level form.
//
// Relay key statements (docs/protocol/relay-commands.md, "Relay key
// statements"): a statement the relay pushes is verified against the signing
// key of the address this link holds and, if newer than the last one followed,
// replaces that address's Noise key and PSK (address(), followed_serial());
// anything else is counted and ignored, never an error that closes the link.
// The caller persists address() and followed_serial() so the next connection
// uses the new key.
//
// Queue semantics, as the relay engine implements them (relay/src/engine.cc):
// - GET returns the OLDEST unexpired stored message of the queue and does not
//   remove it: a second GET returns the same message again until it is ACKed.
// - ACK deletes one message. It needs no authorizer, so the relay accepts it
//   only on a connection that proved the recipient key for the queue (GET or
//   SUB) and was delivered that very message (recipient id + message id); ACK on
//   any other connection is refused like an unknown queue (kNotFound here).
//   ACK of a delivered message that has since expired or was ACKed elsewhere
//   succeeds (it is not stored either way).
// - SUB makes this connection the queue's one subscriber (a later SUB
//   elsewhere takes over) and restarts delivery from the oldest stored
//   message; messages are then pushed (NextPush) without a command, at most a
//   small window of unacknowledged ones at a time; ACK opens the window.
// - DEL removes the queue and every message in it.
//
// Relay error codes become Errc values (RelayErrorToError): AUTH (bad
// authorizer OR no such queue, deliberately indistinguishable) -> kNotFound;
// QUOTA, RATE_LIMITED, TOO_LARGE -> kLimitExceeded; MALFORMED -> kMalformed;
// anything else -> kIo "relay refused the command". A reply that never comes
// -> kIo "relay did not answer in time"; a link the relay (or the network)
// closed -> kIo "relay connection closed". A closed link stays closed:
// connect again.
//
// Every wait is bounded: Connect by its deadline, each command by
// reply_timeout() (kDefaultRelayReplyTimeout unless set), NextPush and
// WaitForStatements by their argument.
//
// I/O model: the link owns a private event loop that runs only inside its
// calls; between calls nothing is read or written. The relay cuts off a
// connection that stays silent past its idle timeout, so a caller that keeps a
// link across long pauses must expect kIo "relay connection closed" and
// reconnect. Pushes that arrive while nobody waits for them are kept, at most
// kMaxRelayLinkPendingReplies; a relay that sends more is cut off (it is
// flooding us). An answer to a command nobody waits for any more (its call
// timed out, or a quiet ACK's) is dropped on arrival.
//
// Thread safety: none. A RelayLink is used from one thread at a time. It is
// move-only; a moved-from RelayLink may only be destroyed or assigned to.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/crypto/sign.h"
#include "rhizome/client/messenger.h"
#include "rhizome/client/relay_port.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/relay_key_statement.h"
#include "rhizome/protocol/relay_messages.h"
#include "rhizome/protocol/wire_types.h"

namespace rhizome::client {

// How long a command waits for its reply unless set_reply_timeout() says otherwise.
inline constexpr std::chrono::milliseconds kDefaultRelayReplyTimeout{10'000};
// Replies and pushes kept while nobody waits for them. A relay pushes at most
// 64 unacknowledged messages per connection, so a well-behaved one never
// comes near this.
inline constexpr std::size_t kMaxRelayLinkPendingReplies = 256;

// The Error for a relay's refusal (static messages):
//   kAuth -> kNotFound "no such queue or not authorized";
//   kQuota -> kLimitExceeded "relay quota reached";
//   kRateLimited -> kLimitExceeded "relay rate limit reached";
//   kTooLarge -> kLimitExceeded "too large for the relay";
//   kMalformed -> kMalformed "relay rejected the command as malformed";
//   any other code (also unknown ones) -> kIo "relay refused the command".
Error RelayErrorToError(protocol::RelayErrorCode code) noexcept;


class RelayLink final : public RelayPort {
 public:
  // Connects to `address` and runs the NKpsk0 handshake, all within `deadline`.
  // `followed_serial` is the serial of the last key statement already followed
  // for this address (0 = none); statements not above it are ignored.
  // Errors:
  //   kInvalidArgument "relay access key must be 32 bytes" (psk neither empty
  //                    nor 32 bytes);
  //   kIo "relay unreachable"          cannot resolve, connect, or the
  //                                    connection failed during the handshake;
  //   kIo "relay connection timed out" `deadline` passed first;
  //   otherwise the channel's error with its code, e.g. kAuthenticationFailed
  //   when the relay drops the handshake (wrong Noise key pinned or wrong
  //   access key), kUnsupported (no common version).
  static Result<RelayLink> Connect(const protocol::RelayAddress& address,
                                   std::uint64_t followed_serial,
                                   std::chrono::milliseconds deadline);

  RelayLink(RelayLink&& other) noexcept;
  RelayLink& operator=(RelayLink&& other) noexcept;
  RelayLink(const RelayLink&) = delete;
  RelayLink& operator=(const RelayLink&) = delete;
  ~RelayLink();  // closes the connection

  // ---- high-level queue operations -----------------------------------------
  // Each sends one command (CreateQueue two) and waits up to reply_timeout()
  // for its reply. Besides the errors listed, each may return the mapped relay
  // refusals and kIo "relay did not answer in time" / "relay connection closed"
  // (see the header comment).

  // NEW with `recipient`'s public key, then KEY setting `send_key` (signed by
  // `recipient`): NewQueue() then SetQueueKey(). If KEY is refused, the new
  // queue is deleted again (best effort). Errors: as those two.
  Result<NewQueueResult> CreateQueue(const crypto::Ed25519KeyPair& recipient, ByteSpan send_key) override;

  // NEW alone, for a caller that needs the sender id before it can derive the
  // send key (an invite's request queue, DESIGN §6). The queue takes no SEND
  // until SetQueueKey(). Errors: kLimitExceeded (the relay's queue quota);
  // kMalformed "unexpected reply from the relay".
  Result<NewQueueResult> NewQueue(const crypto::Ed25519KeyPair& recipient) override;

  // KEY: sets the queue's 32-byte send key, once (signed by `recipient`).
  // Errors: kInvalidArgument if send_key is not 32 bytes or all zeros;
  // kNotFound (no such queue or wrong key); kIo "relay refused the command"
  // also when the key was already set.
  Status SetQueueKey(const protocol::Id& recipient_id, const crypto::Ed25519KeyPair& recipient,
                     ByteSpan send_key) override;

  // SEND `blob` to the queue `sender_id` (MAC'd with `send_key`). The relay
  // has stored it durably when this returns OK.
  // Errors: kInvalidArgument if send_key is not 32 bytes or all zeros, or blob
  // is not one of protocol::kRelayBlobSizes (checked before anything is sent);
  // kNotFound (no such queue or wrong send key); kLimitExceeded (the queue or
  // the relay is full, or the connection's rate limit).
  Status Send(const protocol::Id& sender_id, ByteSpan send_key, const Bytes& blob) override;

  // GET: the queue's oldest stored message, or nullopt when it is empty. The
  // message stays stored (GET again returns it again) until Ack().
  // Errors: kNotFound (no such queue or wrong key); kMalformed if the reply
  // names another queue.
  Result<std::optional<protocol::QueueMessage>> Get(
      const protocol::Id& recipient_id,
      const crypto::SecretBytes& recipient_ed25519_secret) override;

  // ACK: deletes `message_id`, delivered on THIS link by Get() or a push after
  // Subscribe(). Errors: kNotFound if this link did not receive that message
  // from that queue.
  Status Ack(const protocol::Id& recipient_id, const protocol::Id& message_id) override;
  // A quiet ACK (relay_port.h): sent, not waited for. Errors: kIo (the link
  // is closed), kLimitExceeded (its write queue is full), or the serializer's
  // (an all-zero id). A refusal that comes back later is dropped and counted
  // (quiet_acks_refused()); so is an Ok from a relay that predates quiet ACKs
  // (dropped, not counted).
  Status AckQuietly(const protocol::Id& recipient_id, const protocol::Id& message_id) override;
  std::size_t quiet_acks_refused() const override;

  // SUB: this link becomes the queue's subscriber; stored messages, oldest
  // first, then new ones, arrive through NextPush(). Errors: kNotFound;
  // kLimitExceeded (too many queues on one connection).
  Status Subscribe(const protocol::Id& recipient_id,
                   const crypto::SecretBytes& recipient_secret) override;
  // The next pushed QueueMessage (other pushes are handled or skipped), or
  // nullopt after `wait`. Errors: kIo "relay connection closed".
  Result<std::optional<protocol::QueueMessage>> NextPushed(
      std::chrono::milliseconds wait) override;

  // DEL: removes the queue and its messages. Errors: kNotFound.
  Status DeleteQueue(const protocol::Id& recipient_id, const crypto::SecretBytes& recipient_secret) override;

  std::chrono::milliseconds reply_timeout() const;
  void set_reply_timeout(std::chrono::milliseconds timeout);

  // ---- low level -------------------------------------------------------------
  // Sends one command with a fresh corr id and waits for the reply carrying it.
  // Pushed replies (no corr id) met on the way are kept for NextPush().
  // nullopt when the command could not be sent (invalid, link closed), or no
  // reply came within `deadline` or before the link closed.
  std::optional<protocol::RelayReply> Call(
      protocol::RelayCommandBody body,
      std::chrono::milliseconds deadline = kDefaultRelayReplyTimeout);
  // As Call, with the corr id given (it is bound into the body's authorizer).
  std::optional<protocol::RelayReply> CallWithCorr(
      const protocol::Id& corr, protocol::RelayCommandBody body,
      std::chrono::milliseconds deadline = kDefaultRelayReplyTimeout);
  // Builds a body whose authorizer needs the corr id (make(corr)), then calls it.
  template <class MakeBody>
  std::optional<protocol::RelayReply> CallWith(MakeBody make) {
    protocol::Id corr = NewCorrId();
    return CallWithCorr(corr, make(corr));
  }
  // The next pushed reply (a QueueMessage, or a reply without corr id),
  // waiting up to `deadline`; nullopt if none came or the link closed.
  std::optional<protocol::RelayReply> NextPush(std::chrono::milliseconds deadline);

  // Authorizers bound to this connection: over RelayAuthMessage(h, corr,
  // entity, code). On a bad key size they return all zeros (which the relay
  // refuses); the high-level operations check instead.
  protocol::Signature Sign(const crypto::SecretBytes& ed25519_secret, const protocol::Id& corr_id,
                           ByteSpan entity_id, protocol::RelayCommandCode code) const;
  protocol::Mac Mac(ByteSpan key, const protocol::Id& corr_id, ByteSpan entity_id,
                    protocol::RelayCommandCode code) const;
  // A fresh random corr id (never all zeros).
  static protocol::Id NewCorrId();
  // The Noise handshake hash of this connection (public; every authorizer binds it).
  ByteSpan handshake_hash() const;

  // True until the relay or Close() ended the connection (as far as this link
  // has seen).
  bool is_open() const;
  // Lets the link notice, without blocking, what already happened on the
  // socket (a relay that closed the connection while the link was idle), then
  // answers is_open(). For a caller about to reuse a link kept across
  // operations.
  bool CheckOpen() override;
  // Closes the connection. Idempotent.
  void Close();

  // ---- relay key statements ----------------------------------------------------
  // The stored address: the one given, updated by every statement followed.
  const protocol::RelayAddress& address() const;
  std::uint64_t followed_serial() const;
  std::size_t statements_followed() const;
  std::size_t statements_ignored() const;
  // address() and followed_serial() once a statement was followed, else nullopt.
  std::optional<FollowedRelay> Followed() override;
  // Why the last ignored statement was ignored (ApplyKeyStatement's error:
  // kAuthenticationFailed not signed by the relay's key, kAlreadyExists not
  // newer, ...); kInternal while none was ignored.
  Errc last_ignored_reason() const;
  // Waits until `n` statements in all have been followed or ignored; false if
  // the deadline passed or the link closed first.
  bool WaitForStatements(std::size_t n, std::chrono::milliseconds deadline);
  // What the link does with a pushed statement (public so a test can hand one
  // in directly).
  void OnKeyStatement(const protocol::RelayKeyStatement& statement);

 private:
  struct Impl;
  explicit RelayLink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The Messenger's way to real relays: RelayLink::Connect (followed serial 0).
Messenger::ConnectFn RelayLinkConnector();

}  // namespace rhizome::client
