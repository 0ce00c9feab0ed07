#include "server.h"

#include <asio/experimental/as_tuple.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "rhizome/protocol/transport.h"

namespace rhizome::relay {

namespace {

using asio::ip::tcp;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

std::uint64_t UnixNow() { return static_cast<std::uint64_t>(std::time(nullptr)); }

// Coroutines report errors as values; an exception is a bug: let it surface.
void Rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

}  // namespace

RelayServer::RelayServer(asio::io_context& io, RelayEngine& engine, const RelayKeys& keys,
                         ServerOptions options)
    : io_(io), engine_(engine), keys_(keys), options_(std::move(options)), acceptor_(io),
      expire_timer_(io) {}

RelayServer::~RelayServer() { Stop(); }

Status RelayServer::Start() {
  asio::error_code ec;
  auto address = asio::ip::make_address(options_.listen_host, ec);
  if (ec) return Error{Errc::kInvalidArgument, "the listen address is not an IP address"};
  tcp::endpoint endpoint(address, options_.listen_port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{Errc::kIo, "cannot listen on the address"};
  asio::co_spawn(io_, AcceptLoop(), Rethrow);
  asio::co_spawn(io_, ExpireLoop(), Rethrow);
  return {};
}

std::uint16_t RelayServer::port() const {
  asio::error_code ec;
  auto ep = acceptor_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void RelayServer::Stop() {
  if (stopping_) return;
  stopping_ = true;
  asio::error_code ec;
  acceptor_.close(ec);
  expire_timer_.cancel();
  FlushNow();  // commit and answer whatever arrived before the stop
  auto channels = std::move(channels_);
  channels_.clear();
  for (auto& [id, ch] : channels) {
    engine_.OnDisconnect(id);
    ch->Close();
  }
}

asio::awaitable<void> RelayServer::AcceptLoop() {
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
    if (ec) {
      if (stopping_ || ec == asio::error::operation_aborted) co_return;
      continue;  // e.g. EMFILE: keep serving the connections we have
    }
    // Counted from accept, not from the end of the handshake: half-open
    // handshakes hold memory too.
    if (live_connections_ >= options_.max_connections) {
      asio::error_code ignored;
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(io_, Serve(std::move(socket)), Rethrow);
  }
}

asio::awaitable<void> RelayServer::Serve(tcp::socket socket) {
  ++live_connections_;
  struct Release {
    std::size_t& n;
    ~Release() { --n; }
  } release{live_connections_};
  protocol::SecureSessionConfig cfg;
  cfg.kind = protocol::ChannelKind::kClientToRelay;
  cfg.role = crypto::NoiseRole::kResponder;
  cfg.local_statics = {&keys_.noise};
  cfg.psk = &keys_.psk;
  auto session = protocol::SecureSession::Create(cfg, crypto::SystemRandom());
  if (!session) co_return;
  auto established =
      co_await net::Channel::Establish(std::move(socket), std::move(*session), options_.channel);
  if (!established || stopping_) co_return;
  std::shared_ptr<net::Channel> ch = std::move(*established);
  const ConnectionId id = engine_.OnConnect(ch->session().handshake_hash());
  channels_[id] = ch;

  for (;;) {
    auto frame = co_await ch->Receive();
    if (!frame || stopping_) break;
    auto message = protocol::ParseTransportMessage(*frame);
    if (!message) break;  // malformed: close (docs/relay.md)
    auto* command = std::get_if<protocol::RelayCommand>(&*message);
    if (command == nullptr) {
      // Keep-alive is answered; anything else (a reply, a peer message, Close)
      // has no business on a relay connection: close it.
      if (!std::holds_alternative<protocol::Ping>(*message)) break;
      auto pong = protocol::SerializeTransportMessage(protocol::Pong{});
      if (!pong || !ch->TrySend(*pong)) break;
      continue;
    }
    engine_.OnCommand(id, std::move(*command), UnixNow());
    ScheduleFlush();
  }
  if (channels_.erase(id) > 0) engine_.OnDisconnect(id);
  ch->Close();
}

void RelayServer::ScheduleFlush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  // Runs after every handler already queued in this turn: one commit for all.
  asio::post(io_, [this] {
    flush_scheduled_ = false;
    FlushNow();
  });
}

void RelayServer::FlushNow() {
  auto out = engine_.Flush(UnixNow());
  if (!out) {
    // SECURITY/durability: nothing staged was acknowledged; close everything so
    // clients retry (engine.h).
    std::fprintf(stderr, "rhizome-relay: error: %s; closing all connections\n",
                 out.error().message);
    auto channels = std::move(channels_);
    channels_.clear();
    for (auto& [cid, ch] : channels) {
      engine_.OnDisconnect(cid);
      ch->Close();
    }
    return;
  }
  for (auto& o : *out) {
    auto it = channels_.find(o.connection);
    if (it == channels_.end()) continue;
    auto bytes = protocol::SerializeTransportMessage(std::move(o.reply));
    // A client that does not read its replies fills its queue: cut it off
    // rather than buffer without bound.
    if (!bytes || !it->second->TrySend(*bytes)) {
      auto ch = it->second;
      channels_.erase(it);
      engine_.OnDisconnect(o.connection);
      ch->Close();
    }
  }
}

asio::awaitable<void> RelayServer::ExpireLoop() {
  while (!stopping_) {
    expire_timer_.expires_after(options_.expire_every);
    auto [ec] = co_await expire_timer_.async_wait(kTuple);
    if (ec || stopping_) co_return;
    (void)engine_.Expire(UnixNow());
  }
}

}  // namespace rhizome::relay
