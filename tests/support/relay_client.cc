#include "relay_client.h"

#include <optional>

#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/transport.h"

namespace rhizome::testing {

RelayClient::RelayClient(const protocol::RelayAddress& address, std::uint64_t followed_serial)
    : address_(address.Clone()), followed_serial_(followed_serial) {
  crypto::SecretBytes psk(32);  // open relay: zeros
  if (address.psk.size() == 32) psk = address.psk.Clone();
  protocol::SecureSessionConfig cfg;
  cfg.kind = protocol::ChannelKind::kClientToRelay;
  cfg.role = crypto::NoiseRole::kInitiator;
  cfg.remote_static = address.noise_key;
  cfg.psk = &psk;
  cfg.peer_versions = address.versions;
  std::optional<Result<std::shared_ptr<net::Channel>>> result;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        result.emplace(co_await net::Channel::Connect(address.host, address.port, cfg,
                                                      crypto::SystemRandom()));
      },
      asio::detached);
  RunUntil([&] { return result.has_value(); }, std::chrono::seconds(10));
  if (!result) {
    error_ = Error{Errc::kIo, "connect timed out"};
    return;
  }
  if (!*result) {
    error_ = result->error();
    return;
  }
  channel_ = std::move(**result);
  asio::co_spawn(io_, ReceiveLoop(), asio::detached);
}

RelayClient::~RelayClient() { Close(); }

void RelayClient::Close() {
  if (channel_) channel_->Close();
  io_.run_for(std::chrono::milliseconds(20));
}

ByteSpan RelayClient::handshake_hash() const { return channel_->session().handshake_hash(); }

asio::awaitable<void> RelayClient::ReceiveLoop() {
  for (;;) {
    auto frame = co_await channel_->Receive();
    if (!frame) break;
    auto msg = protocol::ParseTransportMessage(*frame);
    if (!msg) break;
    auto* reply = std::get_if<protocol::RelayReply>(&*msg);
    if (reply == nullptr) continue;
    if (auto* statement = std::get_if<protocol::RelayKeyStatement>(&reply->body)) {
      OnKeyStatement(*statement);  // handled here, never left in the inbox
      continue;
    }
    inbox_.push_back(std::move(*reply));
  }
  closed_ = true;
}

bool RelayClient::RunUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    io_.run_one_for(std::chrono::milliseconds(10));
    if (io_.stopped()) io_.restart();
  }
  return true;
}

void RelayClient::OnKeyStatement(const protocol::RelayKeyStatement& statement) {
  auto updated = protocol::ApplyKeyStatement(address_, statement, followed_serial_);
  if (!updated) {
    ++statements_ignored_;
    last_ignored_reason_ = updated.error().code;
    return;
  }
  address_ = std::move(*updated);
  followed_serial_ = statement.serial;
  ++statements_followed_;
}

bool RelayClient::WaitForStatements(std::size_t n, std::chrono::milliseconds deadline) {
  return RunUntil([&] { return statements_followed_ + statements_ignored_ >= n || closed_; },
                  deadline) &&
         statements_followed_ + statements_ignored_ >= n;
}

protocol::Id RelayClient::NewCorrId() {
  protocol::Id id;
  crypto::SystemRandom().Fill(id);
  return id;
}

std::optional<protocol::RelayReply> RelayClient::CallWithCorr(const protocol::Id& corr,
                                                              protocol::RelayCommandBody body,
                                                              std::chrono::milliseconds deadline) {
  if (!channel_) return std::nullopt;
  protocol::RelayCommand command{corr, std::move(body)};
  auto bytes = protocol::SerializeTransportMessage(std::move(command));
  if (!bytes || !channel_->TrySend(*bytes)) return std::nullopt;
  std::optional<protocol::RelayReply> found;
  RunUntil(
      [&] {
        for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
          if (it->corr_id && *it->corr_id == corr) {
            found.emplace(std::move(*it));
            inbox_.erase(it);
            return true;
          }
        }
        return closed_;
      },
      deadline);
  return found;
}

std::optional<protocol::RelayReply> RelayClient::Call(protocol::RelayCommandBody body,
                                                      std::chrono::milliseconds deadline) {
  return CallWithCorr(NewCorrId(), std::move(body), deadline);
}

std::optional<protocol::RelayReply> RelayClient::NextPush(std::chrono::milliseconds deadline) {
  std::optional<protocol::RelayReply> found;
  RunUntil(
      [&] {
        for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
          if (!it->corr_id || std::holds_alternative<protocol::QueueMessage>(it->body)) {
            found.emplace(std::move(*it));
            inbox_.erase(it);
            return true;
          }
        }
        return closed_;
      },
      deadline);
  return found;
}

protocol::Signature RelayClient::Sign(const crypto::SecretBytes& secret, const protocol::Id& corr,
                                      ByteSpan entity, protocol::RelayCommandCode code) const {
  auto msg = protocol::RelayAuthMessage(handshake_hash(), corr, entity, code);
  protocol::Signature sig{};
  if (msg) {
    auto s = crypto::Ed25519Sign(secret, *msg);
    if (s) sig = *s;
  }
  return sig;
}

protocol::Mac RelayClient::Mac(ByteSpan key, const protocol::Id& corr, ByteSpan entity,
                               protocol::RelayCommandCode code) const {
  auto msg = protocol::RelayAuthMessage(handshake_hash(), corr, entity, code);
  protocol::Mac mac{};
  if (msg) (void)crypto::Blake2bKeyed(key, *msg, mac);
  return mac;
}

bool MakeQueue(RelayClient& c, RelayQueue& q) {
  auto created = c.Call(protocol::NewQueue{q.recipient.public_key});
  if (!created) return false;
  auto* qc = std::get_if<protocol::QueueCreated>(&created->body);
  if (qc == nullptr) return false;
  q.recipient_id = qc->recipient_id;
  q.sender_id = qc->sender_id;
  auto keyed = c.CallWith([&](const protocol::Id& corr) -> protocol::RelayCommandBody {
    return protocol::SetQueueKey{q.recipient_id, q.send_key.Clone(),
                                 c.Sign(q.recipient.secret_key, corr, q.recipient_id,
                                        protocol::RelayCommandCode::kKey)};
  });
  return keyed && std::holds_alternative<protocol::RelayOk>(keyed->body);
}

std::optional<protocol::RelayReply> SendTo(RelayClient& c, const RelayQueue& q, const Bytes& blob) {
  return c.CallWith([&](const protocol::Id& corr) -> protocol::RelayCommandBody {
    return protocol::SendMessage{
        q.sender_id,
        c.Mac(q.send_key.expose(), corr, q.sender_id, protocol::RelayCommandCode::kSend), blob};
  });
}

std::optional<protocol::RelayReply> SubscribeTo(RelayClient& c, const RelayQueue& q) {
  return c.CallWith([&](const protocol::Id& corr) -> protocol::RelayCommandBody {
    return protocol::Subscribe{q.recipient_id, c.Sign(q.recipient.secret_key, corr, q.recipient_id,
                                                      protocol::RelayCommandCode::kSub)};
  });
}

}  // namespace rhizome::testing
