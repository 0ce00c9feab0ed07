#include "rhizome/client/relay_link.h"

#include "blocking_channel.h"

#include <algorithm>
#include <asio.hpp>
#include <deque>
#include <exception>
#include <functional>
#include <utility>
#include <variant>

#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/random.h"
#include "rhizome/net/channel.h"
#include "rhizome/protocol/secure_session.h"
#include "rhizome/protocol/transport.h"

namespace rhizome::client {
namespace {

using Clock = std::chrono::steady_clock;
using protocol::RelayCommandCode;

// How long Close() lets the event loop finish the receive loop.
constexpr std::chrono::milliseconds kCloseDrainTimeout{100};
// Quiet ACKs whose refusal is still counted if it comes (oldest forgotten
// first; a forgotten one's answer is dropped like any answer nobody awaits).
constexpr std::size_t kMaxQuietAcksRemembered = 64;

constexpr Error kClosedError{Errc::kIo, "relay connection closed"};
constexpr Error kNoAnswerError{Errc::kIo, "relay did not answer in time"};
constexpr Error kUnexpectedReply{Errc::kMalformed, "unexpected reply from the relay"};

// The Error for a reply that is not the one expected: the relay's refusal, or
// a reply of the wrong kind.
Error RefusalOf(const protocol::RelayReply& reply) {
  if (const auto* e = std::get_if<protocol::RelayError>(&reply.body)) {
    return RelayErrorToError(e->code);
  }
  return kUnexpectedReply;
}

Status CheckSendKey(ByteSpan send_key) {
  if (send_key.size() != protocol::kKeyBytes || protocol::IsAllZero(send_key)) {
    return Error{Errc::kInvalidArgument, "send key must be 32 bytes, not all zero"};
  }
  return OkStatus();
}

Status ExpectOk(const Result<protocol::RelayReply>& reply) {
  if (!reply) return reply.error();
  if (std::holds_alternative<protocol::RelayOk>(reply->body)) return OkStatus();
  return RefusalOf(*reply);
}

}  // namespace

Error RelayErrorToError(protocol::RelayErrorCode code) noexcept {
  switch (code) {
    case protocol::RelayErrorCode::kAuth:
      return Error{Errc::kNotFound, "no such queue or not authorized"};
    case protocol::RelayErrorCode::kQuota:
      return Error{Errc::kLimitExceeded, "relay quota reached"};
    case protocol::RelayErrorCode::kRateLimited:
      return Error{Errc::kLimitExceeded, "relay rate limit reached"};
    case protocol::RelayErrorCode::kTooLarge:
      return Error{Errc::kLimitExceeded, "too large for the relay"};
    case protocol::RelayErrorCode::kMalformed:
      return Error{Errc::kMalformed, "relay rejected the command as malformed"};
    default:
      return Error{Errc::kIo, "relay refused the command"};
  }
}

// ---- Impl -------------------------------------------------------------------

struct RelayLink::Impl {
  explicit Impl(const protocol::RelayAddress& a, std::uint64_t serial)
      : address(a.Clone()), followed_serial(serial) {}

  // Declared first, destroyed last: pending coroutine frames (which may hold
  // the channel) go with it.
  asio::io_context io;
  std::shared_ptr<net::Channel> channel;
  // Replies not yet claimed by a waiting call, at most kMaxRelayLinkPendingReplies.
  std::deque<protocol::RelayReply> inbox;
  // The corr id Exchange() waits for. An answer to anything else (a command
  // whose caller gave up, a quiet ACK) is never kept: nobody would claim it.
  std::optional<protocol::Id> awaiting;
  // Quiet ACKs whose refusal may still come, at most kMaxQuietAcksRemembered;
  // a quiet ACK that succeeds is never answered, so the oldest are forgotten.
  std::deque<protocol::Id> quiet;
  std::size_t quiet_refused = 0;
  bool closed = false;
  std::chrono::milliseconds reply_timeout = kDefaultRelayReplyTimeout;

  protocol::RelayAddress address;
  std::uint64_t followed_serial = 0;
  std::size_t statements_followed = 0;
  std::size_t statements_ignored = 0;
  Errc last_ignored_reason = Errc::kInternal;

  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline) {
    return internal::RunUntil(io, done, deadline);
  }

  asio::awaitable<void> ReceiveLoop() {
    const std::shared_ptr<net::Channel> ch = channel;
    for (;;) {
      auto frame = co_await ch->Receive();
      if (!frame) break;
      auto msg = protocol::ParseTransportMessage(*frame);
      // SECURITY: a relay that sends what does not parse is cut off rather
      // than guessed at.
      if (!msg) break;
      auto* reply = std::get_if<protocol::RelayReply>(&*msg);
      if (reply == nullptr) {
        if (std::holds_alternative<protocol::Close>(*msg)) break;
        continue;  // Pong and the like
      }
      if (auto* statement = std::get_if<protocol::RelayKeyStatement>(&reply->body)) {
        OnKeyStatement(*statement);  // handled here, never left in the inbox
        continue;
      }
      if (reply->corr_id) {
        auto q = std::find(quiet.begin(), quiet.end(), *reply->corr_id);
        if (q != quiet.end()) {
          // A quiet ACK's refusal: the message stays stored and unacknowledged
          // on this connection; the messenger subscribes again when it sees
          // the count grow (a relay without quiet ACKs answers Ok: dropped).
          quiet.erase(q);
          if (std::holds_alternative<protocol::RelayError>(reply->body)) ++quiet_refused;
          continue;
        }
        // An answer nobody waits for (its caller gave up): dropped.
        if (!awaiting || *awaiting != *reply->corr_id) continue;
      }
      // SECURITY: a bounded inbox; a relay flooding us with replies nobody
      // asked for is cut off.
      if (inbox.size() >= kMaxRelayLinkPendingReplies) break;
      inbox.push_back(std::move(*reply));
    }
    ch->Close();
    closed = true;
  }

  void OnKeyStatement(const protocol::RelayKeyStatement& statement) {
    auto updated = protocol::ApplyKeyStatement(address, statement, followed_serial);
    if (!updated) {
      ++statements_ignored;
      last_ignored_reason = updated.error().code;
      return;
    }
    address = std::move(*updated);
    followed_serial = statement.serial;
    ++statements_followed;
  }

  // Queues one command for writing (written when the event loop next runs).
  Status SendCommand(const protocol::Id& corr, protocol::RelayCommandBody body) {
    if (closed || !channel || !channel->is_open()) return kClosedError;
    auto bytes = protocol::SerializeTransportMessage(protocol::RelayCommand{corr, std::move(body)});
    if (!bytes) return bytes.error();
    if (Status sent = channel->TrySend(*bytes); !sent) {
      if (!channel->is_open()) return kClosedError;
      return sent.error();
    }
    return {};
  }

  // Sends one command and waits for the reply with its corr id.
  Result<protocol::RelayReply> Exchange(const protocol::Id& corr, protocol::RelayCommandBody body,
                                        std::chrono::milliseconds deadline) {
    if (Status sent = SendCommand(corr, std::move(body)); !sent) return sent.error();
    awaiting = corr;
    std::optional<protocol::RelayReply> found;
    RunUntil(
        [&] {
          for (auto it = inbox.begin(); it != inbox.end(); ++it) {
            if (it->corr_id && *it->corr_id == corr) {
              found.emplace(std::move(*it));
              inbox.erase(it);
              return true;
            }
          }
          return closed;
        },
        deadline);
    awaiting.reset();  // a late answer is dropped on arrival
    if (found) return std::move(*found);
    if (closed) return kClosedError;
    return kNoAnswerError;
  }

  Result<Bytes> AuthMessage(const protocol::Id& corr, ByteSpan entity,
                            RelayCommandCode code) const {
    if (!channel) return kClosedError;
    return protocol::RelayAuthMessage(channel->session().handshake_hash(), corr, entity, code);
  }

  Result<protocol::Signature> SignFor(const crypto::SecretBytes& secret, const protocol::Id& corr,
                                      ByteSpan entity, RelayCommandCode code) const {
    auto msg = AuthMessage(corr, entity, code);
    if (!msg) return msg.error();
    auto sig = crypto::Ed25519Sign(secret, *msg);
    if (!sig) return sig.error();
    return *sig;
  }

  Result<protocol::Mac> MacFor(ByteSpan key, const protocol::Id& corr, ByteSpan entity,
                               RelayCommandCode code) const {
    RHIZOME_TRY(CheckSendKey(key));
    auto msg = AuthMessage(corr, entity, code);
    if (!msg) return msg.error();
    protocol::Mac mac{};
    RHIZOME_TRY(crypto::Blake2bKeyed(key, *msg, mac));
    return mac;
  }

  // A command authorized by the recipient's Ed25519 key (KEY, SUB, GET, DEL).
  template <class MakeBody>
  Result<protocol::RelayReply> SignedExchange(const crypto::SecretBytes& secret,
                                              const protocol::Id& recipient_id,
                                              RelayCommandCode code, MakeBody make) {
    const protocol::Id corr = RelayLink::NewCorrId();
    auto sig = SignFor(secret, corr, recipient_id, code);
    if (!sig) return sig.error();
    return Exchange(corr, make(*sig), reply_timeout);
  }

  void Close() {
    // Quiet ACKs (and anything else) still queued go out first, briefly.
    if (channel && channel->is_open()) {
      RunUntil([&] { return closed || channel->queued_bytes() == 0; }, kCloseDrainTimeout);
    }
    if (channel) channel->Close();
    if (channel) RunUntil([&] { return closed; }, kCloseDrainTimeout);
    closed = true;
  }
};

// ---- construction -------------------------------------------------------------

RelayLink::RelayLink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RelayLink::RelayLink(RelayLink&& other) noexcept = default;
RelayLink& RelayLink::operator=(RelayLink&& other) noexcept {
  if (this != &other) {
    if (impl_) impl_->Close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
RelayLink::~RelayLink() {
  if (impl_) impl_->Close();
}

Result<RelayLink> RelayLink::Connect(const protocol::RelayAddress& address,
                                     std::uint64_t followed_serial,
                                     std::chrono::milliseconds deadline) {
  crypto::SecretBytes psk(protocol::kRelayPskBytes);  // open relay: zeros
  if (address.psk.size() == protocol::kRelayPskBytes) {
    psk = address.psk.Clone();
  } else if (!address.psk.empty()) {
    return Error{Errc::kInvalidArgument, "relay access key must be 32 bytes"};
  }
  protocol::SecureSessionConfig cfg;
  cfg.kind = protocol::ChannelKind::kClientToRelay;
  cfg.role = crypto::NoiseRole::kInitiator;
  cfg.remote_static = address.noise_key;
  cfg.psk = &psk;
  cfg.peer_versions = address.versions;
  auto impl = std::make_unique<Impl>(address, followed_serial);
  Impl* raw = impl.get();
  auto connected = internal::ConnectWithin(raw->io, address.host, address.port, cfg, deadline);
  if (!connected) {
    // The pending connect is abandoned with `impl` (its io_context).
    return Error{Errc::kIo, "relay connection timed out"};
  }
  if (!*connected) {
    const Error e = connected->error();
    if (e.code == Errc::kIo) return Error{Errc::kIo, "relay unreachable"};
    return e;
  }
  raw->channel = std::move(**connected);
  asio::co_spawn(raw->io, raw->ReceiveLoop(), [raw](std::exception_ptr e) {
    if (e) {
      raw->channel->Close();
      raw->closed = true;
    }
  });
  return RelayLink(std::move(impl));
}

// ---- high level -------------------------------------------------------------------

Result<NewQueueResult> RelayLink::CreateQueue(const crypto::Ed25519KeyPair& recipient,
                                              ByteSpan send_key) {
  if (Status st = CheckSendKey(send_key); !st) return st.error();
  auto ids = NewQueue(recipient);
  if (!ids) return ids.error();
  if (Status st = SetQueueKey(ids->recipient_id, recipient, send_key); !st) {
    // A queue nobody can send to only costs the relay's quota: remove it when
    // the relay answered (not after a timeout or a closed connection, where
    // DEL would only wait again).
    if (st.error().code != Errc::kIo) (void)DeleteQueue(ids->recipient_id, recipient.secret_key);
    return st.error();
  }
  return ids;
}

Result<NewQueueResult> RelayLink::NewQueue(const crypto::Ed25519KeyPair& recipient) {
  auto created =
      impl_->Exchange(NewCorrId(), protocol::NewQueue{recipient.public_key}, impl_->reply_timeout);
  if (!created) return created.error();
  const auto* qc = std::get_if<protocol::QueueCreated>(&created->body);
  if (qc == nullptr) return RefusalOf(*created);
  return NewQueueResult{qc->recipient_id, qc->sender_id};
}

Status RelayLink::SetQueueKey(const protocol::Id& recipient_id,
                              const crypto::Ed25519KeyPair& recipient, ByteSpan send_key) {
  RHIZOME_TRY(CheckSendKey(send_key));
  return ExpectOk(impl_->SignedExchange(
      recipient.secret_key, recipient_id, RelayCommandCode::kKey,
      [&](const protocol::Signature& sig) -> protocol::RelayCommandBody {
        return protocol::SetQueueKey{recipient_id, crypto::SecretBytes::CopyFrom(send_key), sig};
      }));
}

Status RelayLink::Send(const protocol::Id& sender_id, ByteSpan send_key, const Bytes& blob) {
  if (!protocol::IsRelayBlobSize(blob.size())) {
    return Error{Errc::kInvalidArgument, "blob is not one of the relay blob sizes"};
  }
  const protocol::Id corr = NewCorrId();
  auto mac = impl_->MacFor(send_key, corr, sender_id, RelayCommandCode::kSend);
  if (!mac) return mac.error();
  return ExpectOk(
      impl_->Exchange(corr, protocol::SendMessage{sender_id, *mac, blob}, impl_->reply_timeout));
}

Result<std::optional<protocol::QueueMessage>> RelayLink::Get(
    const protocol::Id& recipient_id, const crypto::SecretBytes& recipient_ed25519_secret) {
  auto reply =
      impl_->SignedExchange(recipient_ed25519_secret, recipient_id, RelayCommandCode::kGet,
                            [&](const protocol::Signature& sig) -> protocol::RelayCommandBody {
                              return protocol::GetMessage{recipient_id, sig};
                            });
  if (!reply) return reply.error();
  if (std::holds_alternative<protocol::RelayOk>(reply->body)) {
    return std::optional<protocol::QueueMessage>();  // the queue is empty
  }
  auto* message = std::get_if<protocol::QueueMessage>(&reply->body);
  if (message == nullptr) return RefusalOf(*reply);
  if (message->recipient_id != recipient_id) return kUnexpectedReply;
  return std::optional<protocol::QueueMessage>(std::move(*message));
}

Status RelayLink::Ack(const protocol::Id& recipient_id, const protocol::Id& message_id) {
  return ExpectOk(impl_->Exchange(NewCorrId(), protocol::AckMessage{recipient_id, message_id},
                                  impl_->reply_timeout));
}

Status RelayLink::AckQuietly(const protocol::Id& recipient_id, const protocol::Id& message_id) {
  Impl& im = *impl_;
  const protocol::Id corr = NewCorrId();
  RHIZOME_TRY(im.SendCommand(corr, protocol::AckMessage{recipient_id, message_id, /*quiet=*/true}));
  if (im.quiet.size() >= kMaxQuietAcksRemembered) im.quiet.pop_front();
  im.quiet.push_back(corr);
  // Let the write go out (and any early refusal come in) without waiting.
  im.io.poll();
  if (im.io.stopped()) im.io.restart();
  return {};
}

std::size_t RelayLink::quiet_acks_refused() const { return impl_->quiet_refused; }

Status RelayLink::Subscribe(const protocol::Id& recipient_id,
                            const crypto::SecretBytes& recipient_secret) {
  return ExpectOk(
      impl_->SignedExchange(recipient_secret, recipient_id, RelayCommandCode::kSub,
                            [&](const protocol::Signature& sig) -> protocol::RelayCommandBody {
                              return protocol::Subscribe{recipient_id, sig};
                            }));
}

Status RelayLink::DeleteQueue(const protocol::Id& recipient_id,
                              const crypto::SecretBytes& recipient_secret) {
  return ExpectOk(
      impl_->SignedExchange(recipient_secret, recipient_id, RelayCommandCode::kDel,
                            [&](const protocol::Signature& sig) -> protocol::RelayCommandBody {
                              return protocol::DeleteQueue{recipient_id, sig};
                            }));
}

std::chrono::milliseconds RelayLink::reply_timeout() const { return impl_->reply_timeout; }
void RelayLink::set_reply_timeout(std::chrono::milliseconds timeout) {
  impl_->reply_timeout = timeout;
}

// ---- low level ------------------------------------------------------------------

std::optional<protocol::RelayReply> RelayLink::CallWithCorr(const protocol::Id& corr,
                                                            protocol::RelayCommandBody body,
                                                            std::chrono::milliseconds deadline) {
  auto reply = impl_->Exchange(corr, std::move(body), deadline);
  if (!reply) return std::nullopt;
  return std::move(*reply);
}

std::optional<protocol::RelayReply> RelayLink::Call(protocol::RelayCommandBody body,
                                                    std::chrono::milliseconds deadline) {
  return CallWithCorr(NewCorrId(), std::move(body), deadline);
}

std::optional<protocol::RelayReply> RelayLink::NextPush(std::chrono::milliseconds deadline) {
  std::optional<protocol::RelayReply> found;
  auto& inbox = impl_->inbox;
  impl_->RunUntil(
      [&] {
        for (auto it = inbox.begin(); it != inbox.end(); ++it) {
          if (!it->corr_id || std::holds_alternative<protocol::QueueMessage>(it->body)) {
            found.emplace(std::move(*it));
            inbox.erase(it);
            return true;
          }
        }
        return impl_->closed;
      },
      deadline);
  return found;
}

Result<std::optional<protocol::QueueMessage>> RelayLink::NextPushed(
    std::chrono::milliseconds wait) {
  const auto until = Clock::now() + wait;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    auto reply = NextPush(std::max(left, std::chrono::milliseconds(0)));
    if (!reply) {
      if (impl_->closed) return kClosedError;
      return std::optional<protocol::QueueMessage>();
    }
    if (auto* m = std::get_if<protocol::QueueMessage>(&reply->body)) {
      return std::optional<protocol::QueueMessage>(std::move(*m));
    }
    // A pushed error or anything else: not a message; look further.
    if (Clock::now() >= until) return std::optional<protocol::QueueMessage>();
  }
}

protocol::Signature RelayLink::Sign(const crypto::SecretBytes& ed25519_secret,
                                    const protocol::Id& corr_id, ByteSpan entity_id,
                                    RelayCommandCode code) const {
  auto sig = impl_->SignFor(ed25519_secret, corr_id, entity_id, code);
  return sig ? *sig : protocol::Signature{};
}

protocol::Mac RelayLink::Mac(ByteSpan key, const protocol::Id& corr_id, ByteSpan entity_id,
                             RelayCommandCode code) const {
  // Any key length keyed BLAKE2b takes: tests make wrong MACs on purpose.
  // Send() checks the key instead.
  auto msg = impl_->AuthMessage(corr_id, entity_id, code);
  protocol::Mac mac{};
  if (msg) (void)crypto::Blake2bKeyed(key, *msg, mac);
  return mac;
}

protocol::Id RelayLink::NewCorrId() {
  protocol::Id id = crypto::SystemRandom().Array<protocol::kIdBytes>();
  while (protocol::IsAllZero(id)) id = crypto::SystemRandom().Array<protocol::kIdBytes>();
  return id;
}

ByteSpan RelayLink::handshake_hash() const {
  if (!impl_->channel) return {};
  return impl_->channel->session().handshake_hash();
}

bool RelayLink::is_open() const { return !impl_->closed; }

bool RelayLink::CheckOpen() {
  // A few rounds: the read completion, then the receive loop's exit.
  for (int i = 0; i < 4 && !impl_->closed; ++i) {
    if (impl_->io.poll() == 0) break;
  }
  if (impl_->io.stopped()) impl_->io.restart();
  return !impl_->closed;
}

void RelayLink::Close() { impl_->Close(); }

// ---- key statements ---------------------------------------------------------------

const protocol::RelayAddress& RelayLink::address() const { return impl_->address; }
std::uint64_t RelayLink::followed_serial() const { return impl_->followed_serial; }

std::optional<FollowedRelay> RelayLink::Followed() {
  if (impl_->statements_followed == 0) return std::nullopt;
  auto text = protocol::FormatRelayAddress(impl_->address);
  if (!text) return std::nullopt;
  return FollowedRelay{std::move(*text), impl_->followed_serial};
}
std::size_t RelayLink::statements_followed() const { return impl_->statements_followed; }
std::size_t RelayLink::statements_ignored() const { return impl_->statements_ignored; }
Errc RelayLink::last_ignored_reason() const { return impl_->last_ignored_reason; }

bool RelayLink::WaitForStatements(std::size_t n, std::chrono::milliseconds deadline) {
  Impl& s = *impl_;
  const auto seen = [&s] { return s.statements_followed + s.statements_ignored; };
  s.RunUntil([&] { return seen() >= n || s.closed; }, deadline);
  return seen() >= n;
}

void RelayLink::OnKeyStatement(const protocol::RelayKeyStatement& statement) {
  impl_->OnKeyStatement(statement);
}

Messenger::ConnectFn RelayLinkConnector() {
  return [](const protocol::RelayAddress& address, std::uint64_t followed_serial,
            std::chrono::milliseconds timeout) -> Result<std::unique_ptr<RelayPort>> {
    auto link = RelayLink::Connect(address, followed_serial, timeout);
    if (!link) return link.error();
    return std::unique_ptr<RelayPort>(std::make_unique<RelayLink>(std::move(*link)));
  };
}

}  // namespace rhizome::client
