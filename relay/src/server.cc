#include "server.h"

#include <algorithm>
#include <asio/experimental/as_tuple.hpp>
#include <chrono>
#include <ctime>

#include "log.h"
#include "rhizome/crypto/secret.h"
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
      expire_timer_(io), commit_timer_(io), metrics_acceptor_(io) {}

RelayServer::~RelayServer() {
  Stop();
  StopSyncThread();
}

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
  if (!options_.metrics_host.empty()) {
    auto metrics_address = asio::ip::make_address(options_.metrics_host, ec);
    // SECURITY: the metrics endpoint has no authentication: loopback only.
    if (ec || !metrics_address.is_loopback()) {
      acceptor_.close(ec);
      return Error{Errc::kInvalidArgument, "the metrics address must be a loopback IP address"};
    }
    tcp::endpoint metrics_endpoint(metrics_address, options_.metrics_port);
    metrics_acceptor_.open(metrics_endpoint.protocol(), ec);
    if (!ec) metrics_acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) metrics_acceptor_.bind(metrics_endpoint, ec);
    if (!ec) metrics_acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      acceptor_.close(ec);
      metrics_acceptor_.close(ec);
      return Error{Errc::kIo, "cannot listen on the metrics address"};
    }
    asio::co_spawn(io_, MetricsAcceptLoop(), Rethrow);
  }
  // Pushed after every handshake (rotate.h, DESIGN §9).
  if (keys_.statement) engine_.SetKeyStatement(keys_.statement->Clone());
  asio::co_spawn(io_, AcceptLoop(), Rethrow);
  asio::co_spawn(io_, ExpireLoop(), Rethrow);
  sync_thread_ = std::thread([this, alive = std::weak_ptr<int>(alive_)] { SyncLoop(alive); });
  return {};
}

void RelayServer::RequestSync(std::uint64_t generation) {
  {
    std::lock_guard<std::mutex> lock(sync_mu_);
    sync_requested_ = generation;
  }
  sync_cv_.notify_one();
}

// The sync thread: one SyncToDisk() covers every commit that returned before
// it started, so however many turns commit while an fsync runs, the next one
// covers them all.
void RelayServer::SyncLoop(std::weak_ptr<int> server_alive) {
  std::uint64_t done = 0;
  std::unique_lock<std::mutex> lock(sync_mu_);
  for (;;) {
    sync_cv_.wait(lock, [&] { return sync_stop_ || sync_requested_ > done; });
    if (sync_stop_) return;
    const std::uint64_t target = sync_requested_;
    lock.unlock();
    const bool ok = engine_.SyncToDisk().ok();
    lock.lock();
    done = target;
    asio::post(io_, [this, server_alive, target, ok] {
      if (server_alive.lock()) OnSynced(target, ok);
    });
  }
}

void RelayServer::StopSyncThread() {
  if (!sync_thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(sync_mu_);
    sync_stop_ = true;
  }
  sync_cv_.notify_one();
  sync_thread_.join();
}

void RelayServer::OnSynced(std::uint64_t generation, bool ok) {
  if (failed_) return;
  if (!ok) return FailStop();
  // Written now, not posted: a posted write would also hold back the pushes
  // FlushNow() below writes to the same connections until after its commit.
  std::vector<Outgoing> released;
  while (!held_.empty() && held_.front().generation <= generation) {
    auto& out = held_.front().out;
    if (released.empty()) {
      released.swap(out);
    } else {
      released.insert(released.end(), std::make_move_iterator(out.begin()),
                      std::make_move_iterator(out.end()));
    }
    held_.pop_front();
  }
  Send(std::move(released), SendMode::kNow);
  synced_generation_ = std::max(synced_generation_, generation);
  if (flush_deferred_ && !stopping_) FlushNow();
}

void RelayServer::FailStop() {
  // SECURITY/durability: after a failed fsync the kernel may have dropped
  // pages of the WAL that later frames depend on, so a later, successful
  // sync proves nothing. Acknowledge nothing more; the operator (or systemd)
  // restarts the relay, which recovers what is durable.
  MarkSyncFailed();
  Stop();
  io_.stop();
}

void RelayServer::MarkSyncFailed() {
  Log(LogLevel::kError, "cannot sync the relay database to disk; stopping");
  failed_ = true;
  ++counters_.commit_failures;
  held_.clear();
}

std::uint16_t RelayServer::metrics_port() const {
  if (!metrics_acceptor_.is_open()) return 0;
  asio::error_code ec;
  auto ep = metrics_acceptor_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

ServerCounters RelayServer::counters() const {
  ServerCounters c = counters_;
  c.connections_open = LiveConnections();
  return c;
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
  metrics_acceptor_.close(ec);
  expire_timer_.cancel();
  commit_timer_.cancel();
  FlushNow(/*force=*/true);  // commit whatever arrived before the stop
  // One last sync, here (we are stopping anyway), after the sync thread has
  // ended: if its last fdatasync failed, this one fails too (SyncToDisk is
  // sticky) and nothing held is sent. The replies are queued on channels
  // that are closed right after, so most clients will not see them; they
  // retry what they did not see acknowledged.
  StopSyncThread();
  if (!failed_ && !held_.empty()) {
    if (engine_.SyncToDisk().ok()) {
      OnSynced(generation_, true);
    } else {
      MarkSyncFailed();
    }
  }
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
    if (LiveConnections() >= options_.max_connections) {
      ++counters_.connections_refused;
      asio::error_code ignored;
      socket.close(ignored);
      continue;
    }
    ++counters_.connections_accepted;
    asio::co_spawn(io_, Serve(std::move(socket)), Rethrow);
  }
}

// A connection is a coroutine only while it handshakes (Handshake()); after
// that it is driven by the channel's callbacks (net::Channel::ReceiveEach), so
// an idle connection holds one small wait handler instead of a chain of
// coroutine frames. A message's parsed form lives only inside HandleMessage().
// Memory per established connection here: the channels_ entry and the close
// callback's captures (the message callback fits inside std::function).
asio::awaitable<void> RelayServer::Serve(tcp::socket socket) {
  // Counts the handshake. The counter is shared: this frame may outlive the
  // server (destroyed with the io_context at exit).
  struct Handshaking {
    std::shared_ptr<std::size_t> n;
    explicit Handshaking(std::shared_ptr<std::size_t> counter) : n(std::move(counter)) { ++*n; }
    ~Handshaking() { --*n; }
    Handshaking(const Handshaking&) = delete;
    Handshaking& operator=(const Handshaking&) = delete;
  } handshaking(handshaking_);
  std::shared_ptr<net::Channel> ch = co_await Handshake(std::move(socket));
  if (ch == nullptr || stopping_) co_return;
  const ConnectionId id = engine_.OnConnect(ch->session().handshake_hash());
  channels_[id] = ch;
  if (keys_.statement) ScheduleFlush();  // sends the key statement OnConnect queued

  // The message callback captures only `this` and the id: 16 trivially
  // copyable bytes, which std::function stores without an allocation. It is
  // safe without a liveness check: a channel calls it only while open, and
  // every open channel holding it is in channels_, which Stop() (and so the
  // destructor) closes. The close callback can run after the server is gone
  // (at io_context teardown), so it holds the server weakly.
  const std::weak_ptr<RelayServer> server(std::shared_ptr<RelayServer>(alive_, this));
  ch->ReceiveEach([this, id](Bytes frame) { return !stopping_ && HandleMessage(id, frame); },
                  [server, id](const Error&) {
                    if (auto s = server.lock()) s->OnClosed(id);
                  });
}

void RelayServer::OnClosed(ConnectionId id) {
  if (channels_.erase(id) > 0) engine_.OnDisconnect(id);
}

asio::awaitable<std::shared_ptr<net::Channel>> RelayServer::Handshake(tcp::socket socket) {
  protocol::SecureSessionConfig cfg;
  cfg.kind = protocol::ChannelKind::kClientToRelay;
  cfg.role = crypto::NoiseRole::kResponder;
  // During a key transition the previous static key is accepted too (relay_keys.h).
  cfg.local_statics = HandshakeStatics(keys_, UnixNow());
  cfg.psk = &keys_.psk;
  auto session = protocol::SecureSession::Create(cfg, crypto::SystemRandom());
  if (!session) co_return nullptr;
  auto established =
      co_await net::Channel::Establish(std::move(socket), std::move(*session), options_.channel);
  if (!established) {
    if (!stopping_) {
      ++counters_.handshakes_failed;
      Log(LogLevel::kDebug, "handshake failed: %s", established.error().message);
    }
    co_return nullptr;
  }
  co_return std::move(*established);
}

bool RelayServer::HandleMessage(ConnectionId id, ByteSpan frame) {
  auto message = protocol::ParseTransportMessage(frame);
  if (!message) {  // malformed: close (docs/relay.md)
    ++counters_.protocol_violations;
    Log(LogLevel::kDebug, "closing a connection: %s", message.error().message);
    return false;
  }
  auto* command = std::get_if<protocol::RelayCommand>(&*message);
  if (command == nullptr) {
    // Keep-alive is answered; anything else (a reply, a peer message, Close)
    // has no business on a relay connection: close it.
    if (!std::holds_alternative<protocol::Ping>(*message)) {
      ++counters_.protocol_violations;
      Log(LogLevel::kDebug, "closing a connection: a message that is not a relay command");
      return false;
    }
    auto it = channels_.find(id);
    if (it == channels_.end()) return false;
    auto pong = protocol::SerializeTransportMessage(protocol::Pong{});
    return pong && it->second->TrySend(*pong);
  }
  engine_.OnCommand(id, std::move(*command), UnixNow());
  // Early in a turn its pushes leave now (engine.h TakeEarly), one write per
  // connection: a delivery need not wait for the rest of the turn. Later in a
  // long turn (under load) they leave at its end, before the commit, where
  // several frames for one connection share a write. (The budget is checked
  // before the command: one SUB may push a whole delivery window past it.)
  if (pushes_this_turn_ < kImmediatePushes) {
    auto early = engine_.TakeEarly();
    pushes_this_turn_ += early.size();
    Send(std::move(early), SendMode::kNow);
  }
  ++commands_since_flush_;
  ScheduleFlush();
  return true;
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

void RelayServer::FlushNow(bool force) {
  pushes_this_turn_ = 0;
  // Pushes first, written now: a delivery waits neither for the fsync
  // (engine.h TakeEarly) nor for this commit's journal write; the senders'
  // acknowledgements below do.
  Send(engine_.TakeEarly(), SendMode::kNow);
  if (failed_) return;
  // Group commit: while a sync runs, keep staging into the open transaction
  // (its replies would wait for the next sync anyway); OnSynced() commits it.
  // One commit and one fsync per sync period, not one commit per turn, at any
  // rate; bounded by kMaxCommandsPerCommit.
  // The commit interval: at most one commit per options_.commit_interval,
  // so a transaction gathers more commands (and a message acknowledged by its
  // recipient meanwhile never reaches the database file).
  if (!force && commands_since_flush_ < kMaxCommandsPerCommit &&
      engine_.pending_reply_bytes() < kMaxPendingReplyBytes) {
    if (SyncInFlight()) {
      flush_deferred_ = true;
      return;
    }
    if (options_.commit_interval.count() > 0 && engine_.has_staged_writes()) {
      const auto due = last_commit_ + options_.commit_interval;
      if (std::chrono::steady_clock::now() < due) {
        flush_deferred_ = true;
        ArmCommitTimer(due);
        return;
      }
    }
  }
  flush_deferred_ = false;
  commands_since_flush_ = 0;
  const std::uint64_t commits_before = engine_.stats().commits;
  auto out = engine_.Flush(UnixNow());
  if (!out) {
    ++counters_.commit_failures;
    // SECURITY/durability: nothing staged was acknowledged; close everything so
    // clients retry (engine.h).
    Log(LogLevel::kError, "%s; closing all connections", out.error().message);
    auto channels = std::move(channels_);
    channels_.clear();
    for (auto& [cid, ch] : channels) {
      engine_.OnDisconnect(cid);
      ch->Close();
    }
    return;
  }
  if (engine_.stats().commits != commits_before) {
    ++counters_.commits;
    last_commit_ = std::chrono::steady_clock::now();
    held_.push_back(Held{++generation_, std::move(*out)});
    if (generation_ - synced_generation_ > kMaxUnsyncedCommits) {
      // The disk is slower than the clients (a sync has not finished while
      // kMaxUnsyncedCommits full transactions were committed): sync here, as
      // before the sync thread existed, so the held replies stay bounded and
      // the clients wait for the disk.
      OnSynced(generation_, engine_.SyncToDisk().ok());
      return;
    }
    RequestSync(generation_);
  } else if (held_.empty()) {
    Send(std::move(*out));
  } else if (!out->empty()) {
    held_.push_back(Held{generation_, std::move(*out)});
  }
}

void RelayServer::ArmCommitTimer(std::chrono::steady_clock::time_point due) {
  if (commit_timer_armed_) return;
  commit_timer_armed_ = true;
  commit_timer_.expires_at(due);
  commit_timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](const asio::error_code& ec) {
    if (!alive.lock()) return;
    commit_timer_armed_ = false;
    if (!ec && flush_deferred_ && !stopping_ && !failed_) FlushNow();
  });
}

void RelayServer::Send(std::vector<Outgoing> out, SendMode mode) {
  for (auto& o : out) {
    auto it = channels_.find(o.connection);
    if (it == channels_.end()) continue;
    net::Channel& ch = *it->second;
    if (mode == SendMode::kNow && !ch.corked()) {
      ch.Cork();
      corked_.push_back(it->second);
    }
    // Serialized into one reused buffer; the channel seals it into its own
    // write queue at once, and the plaintext is wiped then (a key statement
    // carries the access key).
    const Status serialized = protocol::SerializeTransportMessageInto(std::move(o.reply), wire_);
    const bool sent = serialized && ch.TrySend(wire_);
    crypto::Wipe(wire_);
    // A client that does not read its replies fills its queue: cut it off
    // rather than buffer without bound.
    if (!sent) {
      auto closing = it->second;
      channels_.erase(it);
      engine_.OnDisconnect(o.connection);
      closing->Close();
    }
  }
  for (auto& ch : corked_) ch->Uncork();  // a closed one writes nothing
  corked_.clear();
}

asio::awaitable<void> RelayServer::ExpireLoop() {
  while (!stopping_) {
    expire_timer_.expires_after(options_.expire_every);
    auto [ec] = co_await expire_timer_.async_wait(kTuple);
    if (ec || stopping_) co_return;
    auto removed = engine_.Expire(UnixNow());
    // Expiry commits are acknowledged to nobody, but one may retire a journal
    // file, which is removed only after a sync covers that commit: on an idle
    // relay nothing else would sync (docs/relay-internals.md, "Message
    // journal").
    if (!failed_) RequestSync(++generation_);
    if (!removed) {
      Log(LogLevel::kWarn, "expiry run failed: %s", removed.error().message);
    } else {
      Log(LogLevel::kDebug, "expiry run removed %llu items",
          static_cast<unsigned long long>(*removed));
    }
  }
}

asio::awaitable<void> RelayServer::MetricsAcceptLoop() {
  while (!stopping_) {
    auto [ec, socket] = co_await metrics_acceptor_.async_accept(kTuple);
    if (ec) {
      if (stopping_ || ec == asio::error::operation_aborted) co_return;
      continue;
    }
    // A few scrapes at once are plenty; more is someone misbehaving.
    if (*metrics_connections_ >= kMaxMetricsConnections) {
      asio::error_code ignored;
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(io_, ServeMetrics(std::move(socket)), Rethrow);
  }
}

asio::awaitable<void> RelayServer::ServeMetrics(tcp::socket socket) {
  struct Release {
    std::shared_ptr<std::size_t> n;
    ~Release() { --*n; }
  } release{metrics_connections_};
  ++*metrics_connections_;
  // One deadline for the whole exchange: a client that never finishes its
  // request, or never reads the reply, is cut off.
  auto sock = std::make_shared<tcp::socket>(std::move(socket));
  asio::steady_timer deadline(io_);
  deadline.expires_after(kMetricsRequestTimeout);
  deadline.async_wait([sock](const asio::error_code& ec) {
    if (ec) return;  // cancelled: the exchange finished in time
    asio::error_code ignored;
    sock->close(ignored);
  });

  std::string received;
  char buffer[1024];
  MetricsRoute route = MetricsRoute::kIncomplete;
  while (route == MetricsRoute::kIncomplete) {
    // RouteMetricsRequest answers kBadRequest once kMaxMetricsRequestBytes are
    // buffered, so `room` is never zero here.
    const std::size_t room = kMaxMetricsRequestBytes - received.size();
    auto [ec, n] = co_await sock->async_read_some(
        asio::buffer(buffer, std::min(room, sizeof(buffer))), kTuple);
    if (ec) co_return;  // closed, reset or past the deadline: nothing to answer
    received.append(buffer, n);
    route = RouteMetricsRequest(received);
  }
  const std::string body =
      route == MetricsRoute::kMetrics ? RenderMetrics(engine_.stats(), counters()) : std::string();
  const std::string reply = MetricsHttpResponse(route, body);
  auto [wec, written] = co_await asio::async_write(*sock, asio::buffer(reply), kTuple);
  (void)written;
  asio::error_code ignored;
  if (!wec) sock->shutdown(tcp::socket::shutdown_both, ignored);
  sock->close(ignored);
  deadline.cancel();
}

}  // namespace rhizome::relay
