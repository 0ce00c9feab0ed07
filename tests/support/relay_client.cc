#include "relay_client.h"

#include <utility>

namespace rhizome::testing {

RelayClient::RelayClient(const protocol::RelayAddress& address, std::uint64_t followed_serial,
                         std::chrono::milliseconds deadline)
    : given_(address.Clone()), given_serial_(followed_serial) {
  auto link = client::RelayLink::Connect(address, followed_serial, deadline);
  if (!link) {
    error_ = link.error();
    return;
  }
  link_.emplace(std::move(*link));
}

std::optional<protocol::RelayReply> RelayClient::Call(protocol::RelayCommandBody body,
                                                      std::chrono::milliseconds deadline) {
  if (!link_) return std::nullopt;
  return link_->Call(std::move(body), deadline);
}

std::optional<protocol::RelayReply> RelayClient::CallWithCorr(const protocol::Id& corr,
                                                              protocol::RelayCommandBody body,
                                                              std::chrono::milliseconds deadline) {
  if (!link_) return std::nullopt;
  return link_->CallWithCorr(corr, std::move(body), deadline);
}

std::optional<protocol::RelayReply> RelayClient::NextPush(std::chrono::milliseconds deadline) {
  if (!link_) return std::nullopt;
  return link_->NextPush(deadline);
}

protocol::Signature RelayClient::Sign(const crypto::SecretBytes& secret, const protocol::Id& corr,
                                      ByteSpan entity, protocol::RelayCommandCode code) const {
  if (!link_) return protocol::Signature{};
  return link_->Sign(secret, corr, entity, code);
}

protocol::Mac RelayClient::Mac(ByteSpan key, const protocol::Id& corr, ByteSpan entity,
                               protocol::RelayCommandCode code) const {
  if (!link_) return protocol::Mac{};
  return link_->Mac(key, corr, entity, code);
}

bool MakeQueue(RelayClient& c, RelayQueue& q) {
  if (!c.ok()) return false;
  auto ids = c.link().CreateQueue(q.recipient, q.send_key.expose());
  if (!ids) return false;
  q.recipient_id = ids->recipient_id;
  q.sender_id = ids->sender_id;
  return true;
}

std::optional<protocol::RelayReply> SendTo(RelayClient& c, const RelayQueue& q, const Bytes& blob,
                                           std::chrono::milliseconds deadline) {
  return c.CallWith(
      [&](const protocol::Id& corr) -> protocol::RelayCommandBody {
        return protocol::SendMessage{
            q.sender_id,
            c.Mac(q.send_key.expose(), corr, q.sender_id, protocol::RelayCommandCode::kSend),
            blob};
      },
      deadline);
}

std::optional<protocol::RelayReply> SubscribeTo(RelayClient& c, const RelayQueue& q) {
  return c.CallWith([&](const protocol::Id& corr) -> protocol::RelayCommandBody {
    return protocol::Subscribe{q.recipient_id, c.Sign(q.recipient.secret_key, corr, q.recipient_id,
                                                      protocol::RelayCommandCode::kSub)};
  });
}

}  // namespace rhizome::testing
