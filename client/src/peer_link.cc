#include "rhizome/client/peer_link.h"

#include "blocking_channel.h"

#include <algorithm>
#include <asio.hpp>
#include <exception>
#include <set>
#include <utility>
#include <variant>

#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/random.h"
#include "rhizome/net/channel.h"
#include "rhizome/protocol/secure_session.h"
#include "rhizome/protocol/transport.h"

namespace rhizome::client {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kCloseDrainTimeout{100};

constexpr Error kClosed{Errc::kIo, "direct link closed"};
constexpr Error kBusy{Errc::kLimitExceeded, "direct link is busy"};

}  // namespace

struct PeerLink::Impl {
  // Declared first, destroyed last: pending coroutine frames go with it.
  asio::io_context io;
  std::shared_ptr<net::Channel> channel;
  std::set<protocol::Id> in_flight;    // posted, not yet acknowledged
  std::vector<protocol::Id> acked;     // acknowledged, not yet taken
  bool closed = false;

  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline) {
    return internal::RunUntil(io, done, deadline);
  }

  // Runs what is ready without waiting (writes posted frames, reads acks).
  void Poll() {
    io.poll();
    if (io.stopped()) io.restart();
  }

  asio::awaitable<void> ReceiveLoop() {
    const std::shared_ptr<net::Channel> ch = channel;
    for (;;) {
      auto frame = co_await ch->Receive();
      if (!frame) break;
      auto msg = protocol::ParseTransportMessage(*frame);
      // SECURITY: a peer that sends what does not parse, or what a sender's
      // side of a link never receives, is cut off rather than guessed at.
      if (!msg) break;
      if (auto* ack = std::get_if<protocol::PeerAck>(&*msg)) {
        // An ack for nothing we sent (or sent twice) is a misbehaving peer.
        if (in_flight.erase(ack->delivery_id) == 0) break;
        acked.push_back(ack->delivery_id);
        continue;
      }
      if (std::holds_alternative<protocol::Ping>(*msg)) {
        auto pong = protocol::SerializeTransportMessage(protocol::Pong{});
        if (!pong || !ch->TrySend(*pong)) break;
        continue;
      }
      if (std::holds_alternative<protocol::Pong>(*msg)) continue;
      break;  // Close, or anything else
    }
    ch->Close();
    closed = true;
  }

  void Close() {
    if (channel) channel->Close();
    if (channel) RunUntil([&] { return closed; }, kCloseDrainTimeout);
    closed = true;
  }
};

PeerLink::PeerLink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PeerLink::PeerLink(PeerLink&&) noexcept = default;
PeerLink& PeerLink::operator=(PeerLink&& other) noexcept {
  if (this != &other) {
    if (impl_) impl_->Close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
PeerLink::~PeerLink() {
  if (impl_) impl_->Close();
}

Result<PeerLink> PeerLink::Connect(const PeerTarget& target, const crypto::X25519KeyPair& self,
                                   std::chrono::milliseconds deadline) {
  RHIZOME_TRY(protocol::ValidateDirectAddress(target.address));
  protocol::SecureSessionConfig cfg;
  cfg.kind = protocol::ChannelKind::kPeerLink;
  cfg.role = crypto::NoiseRole::kInitiator;
  cfg.local_statics = {&self};
  cfg.remote_static = target.noise_key;
  cfg.peer_versions = target.versions;
  auto impl = std::make_unique<Impl>();
  Impl* raw = impl.get();
  auto connected =
      internal::ConnectWithin(raw->io, target.address.host, target.address.port, cfg, deadline);
  if (!connected) return Error{Errc::kIo, "direct link timed out"};
  if (!*connected) {
    const Error e = connected->error();
    if (e.code == Errc::kUnsupported) return e;
    return Error{Errc::kIo, "peer unreachable"};
  }
  raw->channel = std::move(**connected);
  asio::co_spawn(raw->io, raw->ReceiveLoop(), [raw](std::exception_ptr e) {
    if (e) {
      raw->channel->Close();
      raw->closed = true;
    }
  });
  return PeerLink(std::move(impl));
}

bool PeerLink::CheckOpen() {
  impl_->Poll();
  return !impl_->closed && impl_->channel && impl_->channel->is_open();
}

Status PeerLink::Post(const protocol::Id& delivery_id, ByteSpan blob) {
  auto& im = *impl_;
  if (im.closed || !im.channel || !im.channel->is_open()) return kClosed;
  if (im.in_flight.size() >= kMaxDirectInFlight || im.in_flight.count(delivery_id) != 0) {
    return kBusy;
  }
  protocol::PeerMessage m;
  m.delivery_id = delivery_id;
  m.blob.assign(blob.begin(), blob.end());
  auto bytes = protocol::SerializeTransportMessage(std::move(m));
  if (!bytes) return bytes.error();
  if (Status sent = im.channel->TrySend(*bytes); !sent) {
    if (!im.channel->is_open()) return kClosed;
    return kBusy;
  }
  im.in_flight.insert(delivery_id);
  im.Poll();
  return {};
}

std::vector<protocol::Id> PeerLink::TakeAcks(std::chrono::milliseconds wait) {
  auto& im = *impl_;
  im.Poll();
  if (im.acked.empty() && !im.in_flight.empty() && wait.count() > 0) {
    im.RunUntil([&] { return !im.acked.empty() || im.closed; }, wait);
  }
  std::vector<protocol::Id> out;
  out.swap(im.acked);
  return out;
}

std::size_t PeerLink::in_flight() const { return impl_->in_flight.size(); }

PeerConnectFn PeerLinkConnector() {
  return [](const PeerTarget& target, const crypto::X25519KeyPair& self,
            std::chrono::milliseconds timeout) -> Result<std::unique_ptr<PeerPort>> {
    auto link = PeerLink::Connect(target, self, timeout);
    if (!link) return link.error();
    return std::unique_ptr<PeerPort>(std::make_unique<PeerLink>(std::move(*link)));
  };
}

}  // namespace rhizome::client
