#include "daemon.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "rhizome/client/peer_link.h"
#include "rhizome/client/relay_link.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/net/channel.h"
#include "rhizome/protocol/secure_session.h"
#include "rhizome/protocol/transport.h"

namespace rhizome::client {

namespace fs = std::filesystem;
using asio::local::stream_protocol;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

namespace {

std::uint64_t UnixNow() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// True if the peer of a connected Unix socket runs as our effective uid.
bool PeerIsUs(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  return cred.uid == geteuid();
}

class Daemon;

// One API connection (io thread only).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Daemon& d, stream_protocol::socket s) : daemon_(d), socket_(std::move(s)) {}
  asio::awaitable<void> Run();
  void Write(std::string line);
  void Close() {
    std::error_code ec;
    socket_.close(ec);
  }
  bool subscribed() const { return subscribed_; }

 private:
  void WriteNext();
  Daemon& daemon_;
  stream_protocol::socket socket_;
  std::string buffer_;
  std::deque<std::string> out_;
  bool writing_ = false;
  bool subscribed_ = false;
};

struct Job {
  std::weak_ptr<Session> session;
  api::v1::Request request;
};

// One accepted direct link (io thread only).
struct DirectConn {
  std::shared_ptr<net::Channel> channel;
  std::size_t unacked = 0;  // PeerMessages handed to the worker, not yet acked
};

// A PeerMessage for the worker.
struct DirectJob {
  std::weak_ptr<DirectConn> conn;
  ByteArray<32> peer{};
  protocol::Id delivery_id{};
  Bytes blob;
};

class Daemon {
 public:
  Daemon(storage::Profile profile, Messenger messenger, const DaemonOptions& options)
      : profile_(std::move(profile)),
        messenger_(std::move(messenger)),
        options_(options),
        acceptor_(io_),
        direct_acceptor_(io_),
        signals_(io_, SIGTERM, SIGINT) {}

  int Run() {
    const fs::path path = SocketPath(profile_.dir());
    if (path.string().size() > kMaxSocketPathBytes) {
      std::fprintf(stderr, "rhizome: error: the profile path is too long for the daemon socket\n");
      return 1;
    }
    // A socket left by a daemon that was killed: nobody can hold the profile
    // (we do, flock), so nobody listens on it.
    ::unlink(path.c_str());
    std::error_code ec;
    acceptor_.open(stream_protocol(), ec);
    const mode_t old_mask = ::umask(0177);  // the socket is created 0600
    if (!ec) acceptor_.bind(stream_protocol::endpoint(path.string()), ec);
    ::umask(old_mask);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      std::fprintf(stderr, "rhizome: error: cannot listen on the daemon socket\n");
      return 1;
    }
    ::chmod(path.c_str(), 0600);
    if (options_.listen && !StartDirect()) {
      ::unlink(path.c_str());
      return 1;
    }
    if (!options_.listen) {
      // Not listening: contacts should stop dialling an address nobody answers
      // (they get a card without it) and --direct invites are refused.
      (void)messenger_.SetDirectAddress(std::nullopt);
    }
    RefreshDirectPeers();
    auto last = messenger_.LastMessageRow();
    last_event_row_ = last ? *last : 0;
    started_at_ = UnixNow();

    signals_.async_wait([this](const std::error_code& e, int) {
      if (!e) Stop();
    });
    asio::co_spawn(io_, AcceptLoop(), asio::detached);
    if (options_.listen) asio::co_spawn(io_, DirectAcceptLoop(), asio::detached);
    std::thread worker([this] { WorkerLoop(); });
    std::cout << "daemon: listening on " << path.string() << std::endl;
    io_.run();
    Stop();
    worker.join();
    ::unlink(path.c_str());
    return 0;
  }

  // io thread: a request line arrived on `s`.
  void OnRequest(const std::shared_ptr<Session>& s, api::v1::Request req) {
    if (req.command_case() == api::v1::Request::kStatus) {
      api::v1::Response r;
      r.set_id(req.id());
      auto* st = r.mutable_status();
      st->set_profile(profile_.dir().string());
      st->set_pid(static_cast<std::uint64_t>(::getpid()));
      st->set_started_at(started_at_);
      st->set_last_sync_at(last_sync_at_.load());
      s->Write(api::FormatResponse(r));
      return;
    }
    if (req.command_case() == api::v1::Request::kSubscribe) {
      subscribers_.push_back(s);
      api::v1::Response r;
      r.set_id(req.id());
      r.mutable_done()->set_message("Subscribed: new messages and contact changes follow.");
      s->Write(api::FormatResponse(r));
      return;
    }
    std::lock_guard lock(mu_);
    if (jobs_.size() >= kMaxQueuedRequests) {
      s->Write(api::FormatResponse(api::ErrorResponse(
          req.id(), Error{Errc::kLimitExceeded, "the daemon is busy; try again"})));
      return;
    }
    jobs_.push_back(Job{s, std::move(req)});
    cv_.notify_one();
  }

  bool AdmitConnection() {
    std::erase_if(sessions_, [](const std::weak_ptr<Session>& w) { return w.expired(); });
    return sessions_.size() < kMaxApiConnections;
  }

 private:
  // Binds the direct listener and records the address contacts should dial.
  bool StartDirect() {
    std::error_code ec;
    const auto ip = asio::ip::make_address(options_.listen->host, ec);
    if (ec) {
      std::fprintf(stderr, "rhizome: error: --listen takes an IP address and a port\n");
      return false;
    }
    const asio::ip::tcp::endpoint ep(ip, options_.listen->port);
    direct_acceptor_.open(ep.protocol(), ec);
    if (!ec) direct_acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) direct_acceptor_.bind(ep, ec);
    if (!ec) direct_acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      std::fprintf(stderr, "rhizome: error: cannot listen for direct links on that address\n");
      return false;
    }
    const auto bound = direct_acceptor_.local_endpoint(ec);
    protocol::DirectAddress listening{options_.listen->host, bound.port()};
    protocol::DirectAddress advertised = options_.advertise ? *options_.advertise : listening;
    if (!options_.advertise && ip.is_unspecified()) {
      std::fprintf(stderr,
                   "rhizome: error: listening on every address: give --advertise HOST:PORT, the "
                   "address contacts should dial\n");
      return false;
    }
    if (auto st = messenger_.SetDirectAddress(advertised); !st) {
      std::fprintf(stderr, "rhizome: error: %s\n", st.error().message);
      return false;
    }
    std::cout << "daemon: direct links on " << protocol::FormatDirectAddress(listening)
              << " (advertised as " << protocol::FormatDirectAddress(advertised) << ")"
              << std::endl;
    return true;
  }

  // Worker thread: the contacts a direct link may come from, for the io thread.
  void RefreshDirectPeers() {
    auto keys = messenger_.DirectPeers();
    if (!keys) return;
    std::set<ByteArray<32>> fresh(keys->begin(), keys->end());
    std::lock_guard lock(direct_mu_);
    direct_peers_.swap(fresh);
  }

  bool IsDirectPeer(ByteSpan key) {
    if (key.size() != 32) return false;
    ByteArray<32> k{};
    std::copy(key.begin(), key.end(), k.begin());
    std::lock_guard lock(direct_mu_);
    return direct_peers_.count(k) != 0;
  }

  asio::awaitable<void> DirectAcceptLoop() {
    for (;;) {
      auto [ec, sock] = co_await direct_acceptor_.async_accept(kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !direct_acceptor_.is_open()) co_return;
        continue;
      }
      std::erase_if(direct_conns_, [](const std::weak_ptr<DirectConn>& w) { return w.expired(); });
      std::error_code ep_ec;
      const auto from = sock.remote_endpoint(ep_ec).address();
      // SECURITY (availability): half-open links have their own small pool,
      // a few per address, so silent connections cannot lock contacts out.
      const auto pending = handshakes_from_.find(from);
      if (ep_ec || direct_handshakes_ >= kMaxDirectHandshakes ||
          (pending != handshakes_from_.end() &&
           pending->second >= kMaxDirectHandshakesPerAddress) ||
          direct_conns_.size() >= kMaxDirectConnections) {
        std::error_code ignored;
        sock.close(ignored);
        continue;
      }
      asio::co_spawn(io_, RunDirect(std::move(sock), from), asio::detached);
    }
  }

  // io thread: one direct link, from handshake to close.
  asio::awaitable<void> RunDirect(asio::ip::tcp::socket sock, asio::ip::address from) {
    protocol::SecureSessionConfig cfg;
    cfg.kind = protocol::ChannelKind::kPeerLink;
    cfg.role = crypto::NoiseRole::kResponder;
    cfg.local_statics = {&messenger_.noise_key_pair()};
    cfg.authorize_initiator = [this](ByteSpan key) { return IsDirectPeer(key); };
    auto session = protocol::SecureSession::Create(cfg, crypto::SystemRandom());
    if (!session) co_return;
    net::ChannelLimits limits;
    limits.handshake_timeout = kDirectHandshakeTimeout;
    struct Slot {  // released on every way out, exceptions included
      Daemon& d;
      asio::ip::address from;
      Slot(Daemon& dd, asio::ip::address f) : d(dd), from(f) {
        ++d.direct_handshakes_;
        ++d.handshakes_from_[from];
      }
      ~Slot() {
        --d.direct_handshakes_;
        if (--d.handshakes_from_[from] == 0) d.handshakes_from_.erase(from);
      }
    };
    std::optional<Slot> slot(std::in_place, *this, from);
    auto established =
        co_await net::Channel::Establish(std::move(sock), std::move(*session), limits);
    slot.reset();
    if (!established) co_return;  // a stranger, a failed handshake, a timeout
    auto conn = std::make_shared<DirectConn>();
    conn->channel = std::move(*established);
    const auto remote = conn->channel->session().remote_static();
    if (!remote) co_return;
    // One link per contact device: a new one replaces the old (a contact
    // cannot hold every slot).
    if (auto old = links_by_peer_[*remote].lock()) old->channel->Close();
    links_by_peer_[*remote] = conn;
    std::erase_if(links_by_peer_, [](const auto& kv) { return kv.second.expired(); });
    direct_conns_.push_back(conn);
    for (;;) {
      auto frame = co_await conn->channel->Receive();
      if (!frame) break;
      auto msg = protocol::ParseTransportMessage(*frame);
      if (!msg) break;  // SECURITY: what does not parse ends the link
      if (auto* pm = std::get_if<protocol::PeerMessage>(&*msg)) {
        // SECURITY: a peer past the window is not following the protocol.
        if (conn->unacked >= kMaxDirectInFlight) break;
        {
          std::lock_guard lock(mu_);
          if (stopping_ || direct_jobs_.size() >= kMaxQueuedDirect) break;
          direct_jobs_.push_back(DirectJob{conn, *remote, pm->delivery_id, std::move(pm->blob)});
          cv_.notify_one();
        }
        ++conn->unacked;
        continue;
      }
      if (std::holds_alternative<protocol::Ping>(*msg)) {
        auto pong = protocol::SerializeTransportMessage(protocol::Pong{});
        if (!pong || !conn->channel->TrySend(*pong)) break;
        continue;
      }
      if (std::holds_alternative<protocol::Pong>(*msg)) continue;
      break;  // Close, or what the sending side never sends
    }
    conn->channel->Close();
  }

  // Worker thread: commits the messages that came over direct links, then
  // has their acks sent. Returns true if any was taken.
  bool RunDirectJobs(std::deque<DirectJob>& jobs) {
    bool any = false;
    for (auto& job : jobs) {
      auto r = messenger_.ReceiveDirect(job.peer, job.blob);
      crypto::Wipe(job.blob);
      const bool ack = r && *r;
      any = any || ack;
      asio::post(io_, [w = job.conn, id = job.delivery_id, ack] {
        auto conn = w.lock();
        if (!conn) return;
        if (conn->unacked > 0) --conn->unacked;
        if (!ack) {
          conn->channel->Close();  // the sender posts it again (and its window resets)
          return;
        }
        auto bytes = protocol::SerializeTransportMessage(protocol::PeerAck{id});
        if (!bytes || !conn->channel->TrySend(*bytes)) conn->channel->Close();
      });
    }
    return any;
  }

  asio::awaitable<void> AcceptLoop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
        continue;
      }
      if (!PeerIsUs(sock.native_handle()) || !AdmitConnection()) {
        std::error_code ignored;
        sock.close(ignored);
        continue;
      }
      auto session = std::make_shared<Session>(*this, std::move(sock));
      sessions_.push_back(session);
      asio::co_spawn(io_, session->Run(), asio::detached);
    }
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      cv_.notify_all();
    }
    asio::post(io_, [this] {
      std::error_code ec;
      acceptor_.close(ec);
      direct_acceptor_.close(ec);
      for (auto& w : direct_conns_) {
        if (auto c = w.lock()) c->channel->Close();
      }
      signals_.cancel(ec);
      for (auto& w : sessions_) {
        if (auto s = w.lock()) s->Close();
      }
    });
  }

  // Worker thread: the only user of messenger_.
  void WorkerLoop() {
    auto next_sync = std::chrono::steady_clock::now();
    for (;;) {
      std::deque<Job> batch;
      std::deque<DirectJob> direct;
      {
        std::unique_lock lock(mu_);
        cv_.wait_until(lock, next_sync, [this] {
          return stopping_ || !jobs_.empty() || !direct_jobs_.empty();
        });
        if (stopping_) break;
        batch.swap(jobs_);
        direct.swap(direct_jobs_);
      }
      bool sync_now = false;
      if (!direct.empty() && RunDirectJobs(direct)) {
        PublishEvents();
        sync_now = true;  // receipts and replies go out at once
      }
      for (auto& job : batch) {
        auto response = api::Execute(messenger_, job.request);
        const auto c = job.request.command_case();
        if (!response.has_error() &&
            (c == api::v1::Request::kSend || c == api::v1::Request::kAccept ||
             c == api::v1::Request::kInviteCreate)) {
          sync_now = true;
        }
        if (c == api::v1::Request::kAccept) RefreshDirectPeers();
        asio::post(io_, [w = job.session, line = api::FormatResponse(response)]() mutable {
          if (auto s = w.lock()) s->Write(std::move(line));
        });
        if (c == api::v1::Request::kSync) PublishEvents();
      }
      if (sync_now || std::chrono::steady_clock::now() >= next_sync) {
        // Failures are retried next pass.
        (void)messenger_.Sync(options_.sync_timeout, 1, options_.push_wait,
                              /*background=*/true);
        last_sync_at_ = UnixNow();
        PublishEvents();
        RefreshDirectPeers();
        next_sync = std::chrono::steady_clock::now() + options_.poll_interval;
      }
    }
  }

  // Worker thread: new incoming messages become events for subscribers.
  // The mark then moves to the newest row, incoming or not (this thread is the
  // only writer), so a profile that mostly sends does not rescan, and
  // decrypt, every message it sent on every pass.
  void PublishEvents() {
    constexpr std::size_t kPage = 256;
    for (int page = 0; page < 64; ++page) {
      auto msgs = messenger_.IncomingAfter(last_event_row_, kPage);
      if (!msgs) return;
      if (!msgs->empty()) {
        std::vector<std::string> lines;
        for (const auto& m : *msgs) {
          api::v1::Response r;
          *r.mutable_event()->mutable_message_received() = api::ToProto(m);
          lines.push_back(api::FormatResponse(r));
          last_event_row_ = m.row;
        }
        asio::post(io_, [this, lines = std::move(lines)] {
          std::erase_if(subscribers_,
                        [](const std::weak_ptr<Session>& w) { return w.expired(); });
          for (auto& w : subscribers_) {
            if (auto s = w.lock()) {
              for (const auto& l : lines) s->Write(l);
            }
          }
        });
      }
      if (msgs->size() < kPage) {  // every incoming message so far is published
        if (auto newest = messenger_.LastMessageRow()) {
          last_event_row_ = std::max(last_event_row_, *newest);
        }
        return;
      }
    }
  }

  storage::Profile profile_;
  Messenger messenger_;
  DaemonOptions options_;
  asio::io_context io_;
  stream_protocol::acceptor acceptor_;
  asio::ip::tcp::acceptor direct_acceptor_;
  std::vector<std::weak_ptr<DirectConn>> direct_conns_;  // io thread
  std::size_t direct_handshakes_ = 0;                     // io thread
  std::map<asio::ip::address, std::size_t> handshakes_from_;  // io thread
  std::map<ByteArray<32>, std::weak_ptr<DirectConn>> links_by_peer_;  // io thread
  std::mutex direct_mu_;
  std::set<ByteArray<32>> direct_peers_;  // guarded by direct_mu_
  asio::signal_set signals_;
  std::vector<std::weak_ptr<Session>> sessions_;     // io thread
  std::vector<std::weak_ptr<Session>> subscribers_;  // io thread
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;   // guarded by mu_
  std::deque<DirectJob> direct_jobs_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::int64_t last_event_row_ = 0;  // worker thread
  std::atomic<std::uint64_t> last_sync_at_{0};
  std::uint64_t started_at_ = 0;
};

asio::awaitable<void> Session::Run() {
  auto self = shared_from_this();
  for (;;) {
    auto [ec, n] = co_await asio::async_read_until(
        socket_, asio::dynamic_buffer(buffer_, api::kMaxApiLineBytes + 1), '\n', kTuple);
    if (ec) {
      if (ec == asio::error::not_found) {  // longer than the limit: answer, then close
        Write(api::FormatResponse(
            api::ErrorResponse(0, Error{Errc::kLimitExceeded, "request is too large"})));
      }
      break;
    }
    std::string line = buffer_.substr(0, n - 1);
    crypto::Wipe(MutableByteSpan(reinterpret_cast<std::uint8_t*>(buffer_.data()), n));
    buffer_.erase(0, n);
    auto req = api::ParseRequest(line);
    api::WipeLine(line);
    if (!req) {
      Write(api::FormatResponse(api::ErrorResponse(0, req.error())));
      continue;
    }
    if (req->command_case() == api::v1::Request::kSubscribe) subscribed_ = true;
    daemon_.OnRequest(self, std::move(*req));
  }
}

void Session::Write(std::string line) {
  line.push_back('\n');
  out_.push_back(std::move(line));
  if (!writing_) WriteNext();
}

void Session::WriteNext() {
  if (out_.empty()) {
    writing_ = false;
    return;
  }
  writing_ = true;
  asio::async_write(socket_, asio::buffer(out_.front()),
                    [self = shared_from_this()](const std::error_code& ec, std::size_t) {
                      api::WipeLine(self->out_.front());
                      self->out_.pop_front();
                      if (ec) {
                        for (auto& l : self->out_) api::WipeLine(l);
                        self->out_.clear();
                        self->writing_ = false;
                        return;
                      }
                      self->WriteNext();
                    });
}

}  // namespace

fs::path SocketPath(const fs::path& profile_dir) { return profile_dir / kSocketFileName; }

int RunDaemon(storage::Profile profile, const DaemonOptions& options) {
  auto messenger = Messenger::Open(profile, crypto::SystemRandom(), RelayLinkConnector());
  if (!messenger) {
    std::fprintf(stderr, "rhizome: error: %s\n", messenger.error().message);
    return 1;
  }
  messenger->SetPeerConnector(PeerLinkConnector());
  // The Messenger refers to the Profile: both move into the daemon together.
  // Profile is pimpl'd (its state lives on the heap), so the reference the
  // Messenger holds stays valid after the move.
  Daemon daemon(std::move(profile), std::move(*messenger), options);
  return daemon.Run();
}

std::optional<Result<api::v1::Response>> CallDaemon(const fs::path& profile_dir,
                                                    const api::v1::Request& request,
                                                    std::chrono::milliseconds timeout) {
  const std::string path = SocketPath(profile_dir).string();
  if (path.size() > kMaxSocketPathBytes) return std::nullopt;
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return std::nullopt;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    return std::nullopt;  // stale socket: no daemon
  }
  if (!PeerIsUs(fd)) {
    return Result<api::v1::Response>(
        Error{Errc::kAuthenticationFailed, "the daemon's socket belongs to another user"});
  }
  api::v1::Request req = request;
  std::string line;
  {
    google::protobuf::util::JsonPrintOptions opts;
    (void)google::protobuf::util::MessageToJsonString(req, &line, opts);
  }
  line.push_back('\n');
  std::string in;
  constexpr std::size_t kReadChunk = 4096;
  char buf[kReadChunk];
  struct WipeAll {  // what was sent and read holds message texts and names
    std::string& line;
    std::string& in;
    char* buf;
    ~WipeAll() {
      api::WipeLine(line);
      api::WipeLine(in);
      crypto::Wipe(MutableByteSpan(reinterpret_cast<std::uint8_t*>(buf), kReadChunk));
    }
  } wipe_all{line, in, buf};
  const Error lost{Errc::kIo, "lost the connection to the daemon"};
  for (std::size_t off = 0; off < line.size();) {
    const ssize_t n = ::send(fd, line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return Result<api::v1::Response>(lost);
    off += static_cast<std::size_t>(n);
  }
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return Result<api::v1::Response>(Error{Errc::kIo, "the daemon did not answer in time"});
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return Result<api::v1::Response>(lost);
    in.append(buf, static_cast<std::size_t>(n));
    if (const auto nl = in.find('\n'); nl != std::string::npos) {
      auto r = api::ParseResponse(std::string_view(in).substr(0, nl));
      if (!r) return Result<api::v1::Response>(r.error());
      return Result<api::v1::Response>(std::move(*r));
    }
    if (in.size() > api::kMaxApiLineBytes) {
      return Result<api::v1::Response>(Error{Errc::kLimitExceeded, "the daemon's answer is too large"});
    }
  }
}

}  // namespace rhizome::client
