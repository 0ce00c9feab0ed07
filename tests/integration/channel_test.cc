// The secure channel over real TCP sockets on 127.0.0.1: handshakes per
// pattern, many concurrent channels, and hostile peers (garbage, slowloris,
// never-finished handshakes, oversized frames) being cut off while others
// keep working. Every loop is bounded in count and time.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <optional>
#include <thread>

#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/net/channel.h"

namespace rhizome::net {
namespace {

using asio::ip::tcp;
using namespace std::chrono_literals;
using protocol::ChannelKind;
using protocol::SecureSessionConfig;

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

void RaiseFdLimit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

// An echo server on 127.0.0.1 running on its own thread.
class EchoServer {
 public:
  EchoServer(ChannelKind kind, const crypto::X25519KeyPair& key, const crypto::SecretBytes* psk,
             ChannelLimits limits, ByteSpan allowed_peer = {})
      : kind_(kind), key_(key), psk_(psk), limits_(limits),
        allowed_(allowed_peer.begin(), allowed_peer.end()),
        acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io_, Accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~EchoServer() {
    io_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  std::atomic<int> established{0};
  std::atomic<int> failed{0};
  std::atomic<int> closed_after_established{0};

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
      if (ec) co_return;
      asio::co_spawn(io_, Serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> Serve(tcp::socket socket) {
    SecureSessionConfig cfg;
    cfg.kind = kind_;
    cfg.role = crypto::NoiseRole::kResponder;
    cfg.local_statics = {&key_};
    cfg.psk = psk_;
    if (kind_ == ChannelKind::kPeerLink) {
      cfg.authorize_initiator = [this](ByteSpan k) { return ConstantTimeEqual(k, allowed_); };
    }
    auto session = protocol::SecureSession::Create(cfg, crypto::SystemRandom());
    if (!session) co_return;
    auto ch = co_await Channel::Establish(std::move(socket), std::move(*session), limits_);
    if (!ch) {
      ++failed;
      co_return;
    }
    ++established;
    for (;;) {
      auto msg = co_await (*ch)->Receive();
      if (!msg) break;
      if (auto st = co_await (*ch)->Send(*msg); !st) break;
    }
    ++closed_after_established;
    (*ch)->Close();
  }

  ChannelKind kind_;
  const crypto::X25519KeyPair& key_;
  const crypto::SecretBytes* psk_;
  ChannelLimits limits_;
  Bytes allowed_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

class ChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    RaiseFdLimit();
  }

  SecureSessionConfig RelayClient(const crypto::SecretBytes& psk) {
    SecureSessionConfig c;
    c.kind = ChannelKind::kClientToRelay;
    c.role = crypto::NoiseRole::kInitiator;
    c.remote_static = server_key_.public_key;
    c.psk = &psk;
    return c;
  }

  // Runs `task` on a client io_context until it completes (bounded by `limit`).
  template <class T>
  T RunClient(asio::awaitable<T> task, std::chrono::seconds limit = 30s) {
    asio::io_context io;
    std::optional<T> result;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { result.emplace(co_await std::move(task)); },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    io.run_for(limit);
    if (!result) {
      ADD_FAILURE() << "client did not finish in time";
      std::abort();
    }
    return std::move(*result);
  }

  crypto::X25519KeyPair server_key_ = crypto::X25519Generate(crypto::SystemRandom());
  crypto::SecretBytes open_psk_ = crypto::SecretBytes(32);
};

// Connects, sends `count` messages, reads the echoes; returns how many matched.
asio::awaitable<int> EchoRoundTrips(std::uint16_t port, SecureSessionConfig cfg, int count) {
  auto ch = co_await Channel::Connect("127.0.0.1", port, cfg, crypto::SystemRandom());
  if (!ch) co_return -1;
  int ok = 0;
  for (int i = 0; i < count; ++i) {
    std::string text = "message " + std::to_string(i);
    if (!co_await (*ch)->Send(Bytes(text.begin(), text.end()))) break;
    auto back = co_await (*ch)->Receive();
    if (back && std::string(back->begin(), back->end()) == text) ++ok;
  }
  (*ch)->Close();
  co_return ok;
}

TEST_F(ChannelTest, RequestResponseOverNKpsk0) {
  EchoServer server(ChannelKind::kClientToRelay, server_key_, &open_psk_, {});
  EXPECT_EQ(RunClient(EchoRoundTrips(server.port(), RelayClient(open_psk_), 20)), 20);
}

TEST_F(ChannelTest, RequestResponseOverXK) {
  auto me = crypto::X25519Generate(crypto::SystemRandom());
  EchoServer server(ChannelKind::kPeerLink, server_key_, nullptr, {}, me.public_key);
  SecureSessionConfig c;
  c.kind = ChannelKind::kPeerLink;
  c.role = crypto::NoiseRole::kInitiator;
  c.local_statics = {&me};
  c.remote_static = server_key_.public_key;
  EXPECT_EQ(RunClient(EchoRoundTrips(server.port(), c, 20)), 20);
}

TEST_F(ChannelTest, ClosedRelayAcceptsTheRightAccessKey) {
  auto psk = crypto::SecretBytes::Random(crypto::SystemRandom(), 32);
  EchoServer server(ChannelKind::kClientToRelay, server_key_, &psk, {});
  EXPECT_EQ(RunClient(EchoRoundTrips(server.port(), RelayClient(psk), 3)), 3);
}

TEST_F(ChannelTest, WrongRelayKeyFailsWithAClearError) {
  EchoServer server(ChannelKind::kClientToRelay, server_key_, &open_psk_, {});
  auto cfg = RelayClient(open_psk_);
  cfg.remote_static = crypto::X25519Generate(crypto::SystemRandom()).public_key;
  auto r = RunClient([&]() -> asio::awaitable<Result<std::shared_ptr<Channel>>> {
    co_return co_await Channel::Connect("127.0.0.1", server.port(), cfg, crypto::SystemRandom());
  }());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kAuthenticationFailed) << r.error().message;
  EXPECT_NE(std::string(r.error().message).find("relay key or access key"), std::string::npos)
      << r.error().message;
}

TEST_F(ChannelTest, WrongAccessKeyFailsWithAClearError) {
  auto psk = crypto::SecretBytes::Random(crypto::SystemRandom(), 32);
  EchoServer server(ChannelKind::kClientToRelay, server_key_, &psk, {});
  auto r = RunClient([&]() -> asio::awaitable<Result<std::shared_ptr<Channel>>> {
    co_return co_await Channel::Connect("127.0.0.1", server.port(), RelayClient(open_psk_),
                                        crypto::SystemRandom());
  }());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kAuthenticationFailed) << r.error().message;
}

TEST_F(ChannelTest, ConnectionRefusedIsAClearError) {
  std::uint16_t port;
  {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }  // closed again: nothing listens there now
  auto r = RunClient([&]() -> asio::awaitable<Result<std::shared_ptr<Channel>>> {
    co_return co_await Channel::Connect("127.0.0.1", port, RelayClient(open_psk_),
                                        crypto::SystemRandom());
  }());
  ASSERT_FALSE(r);
  EXPECT_STREQ(r.error().message, "cannot connect");
}

TEST_F(ChannelTest, AThousandConcurrentChannelsOnOneServer) {
  constexpr int kChannels = 1000;
  EchoServer server(ChannelKind::kClientToRelay, server_key_, &open_psk_, {});
  asio::io_context io;
  std::atomic<int> total{0};
  std::atomic<int> done{0};
  std::vector<std::shared_ptr<Channel>> open_channels;
  for (int i = 0; i < kChannels; ++i) {
    asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
      auto ch = co_await Channel::Connect("127.0.0.1", server.port(), RelayClient(open_psk_),
                                          crypto::SystemRandom());
      if (ch) {
        open_channels.push_back(*ch);  // all stay open at once
        std::string text = "channel " + std::to_string(i);
        if (co_await (*ch)->Send(Bytes(text.begin(), text.end()))) {
          auto back = co_await (*ch)->Receive();
          if (back && std::string(back->begin(), back->end()) == text) ++total;
        }
      }
      ++done;
    }, asio::detached);
  }
  auto give_up = std::chrono::steady_clock::now() + 60s;
  while (done < kChannels && std::chrono::steady_clock::now() < give_up) io.run_for(100ms);
  EXPECT_EQ(done.load(), kChannels);
  EXPECT_EQ(total.load(), kChannels);
  EXPECT_EQ(server.established.load(), kChannels);
  for (auto& c : open_channels) c->Close();
  io.run_for(200ms);
}

// Far more than the loopback socket buffers hold, both ways at once: the
// writers meet a full socket (partial writes, waits for writability, the
// write buffer's front dropped as it drains) and every message still arrives
// whole and in order.
TEST_F(ChannelTest, ABurstLargerThanTheSocketBuffersArrivesWholeAndInOrder) {
  EchoServer server(ChannelKind::kClientToRelay, server_key_, &open_psk_, ChannelLimits{});
  constexpr int kMessages = 1500;
  constexpr std::size_t kSize = 16 * 1024;  // 24 MiB each way
  auto message = [](int i) {
    Bytes m(kSize);
    crypto::DeterministicRandom(static_cast<std::uint64_t>(i) + 1).Fill(m);
    return m;
  };
  auto run = [&]() -> asio::awaitable<int> {
    auto ch = co_await Channel::Connect("127.0.0.1", server.port(), RelayClient(open_psk_),
                                        crypto::SystemRandom());
    if (!ch) co_return -1;
    auto channel = *ch;
    auto writer = [channel, message]() -> asio::awaitable<void> {
      for (int i = 0; i < kMessages; ++i) {
        if (!co_await channel->Send(message(i))) co_return;
      }
    };
    asio::co_spawn(co_await asio::this_coro::executor, writer(), asio::detached);
    int in_order = 0;
    for (int i = 0; i < kMessages; ++i) {
      auto back = co_await channel->Receive();
      if (!back || *back != message(i)) break;
      ++in_order;
    }
    channel->Close();
    co_return in_order;
  };
  EXPECT_EQ(RunClient(run(), 60s), kMessages);
}

// After a read that emptied the socket the channel waits without reading
// again (channel.cc, drained_). Bytes that arrive while nobody is waiting (the
// echo lands while the client sleeps between Receive() calls) must still be
// seen by the next wait.
TEST_F(ChannelTest, AFrameThatArrivesBetweenReceivesIsStillDelivered) {
  EchoServer server(ChannelKind::kClientToRelay, server_key_, &open_psk_, ChannelLimits{});
  auto run = [&]() -> asio::awaitable<int> {
    auto ch = co_await Channel::Connect("127.0.0.1", server.port(), RelayClient(open_psk_),
                                        crypto::SystemRandom());
    if (!ch) co_return -1;
    asio::steady_timer pause(co_await asio::this_coro::executor);
    int ok = 0;
    for (int i = 0; i < 5; ++i) {
      const Bytes text = {'e', 'c', 'h', 'o', static_cast<std::uint8_t>('0' + i)};
      if (!co_await (*ch)->Send(text)) break;
      pause.expires_after(50ms);  // the echo arrives meanwhile
      co_await pause.async_wait(asio::use_awaitable);
      auto back = co_await (*ch)->Receive();
      if (back && *back == text) ++ok;
    }
    (*ch)->Close();
    co_return ok;
  };
  EXPECT_EQ(RunClient(run(), 10s), 5);
}

// TrySend leaves the frame for a write at the end of the turn (posted, so
// that the turn's other frames share it); the frame arrives. A closed channel
// refuses it.
TEST_F(ChannelTest, TrySendWritesAtTheEndOfTheTurn) {
  EchoServer server(ChannelKind::kClientToRelay, server_key_, &open_psk_, ChannelLimits{});
  auto run = [&]() -> asio::awaitable<int> {
    auto ch = co_await Channel::Connect("127.0.0.1", server.port(), RelayClient(open_psk_),
                                        crypto::SystemRandom());
    if (!ch) co_return -1;
    int ok = 0;
    const Bytes later = {'l', 'a', 't', 'e', 'r'};
    if ((*ch)->TrySend(later) && (*ch)->queued_bytes() > 0) ++ok;  // written later
    auto back = co_await (*ch)->Receive();
    if (back && *back == later) ++ok;
    if ((*ch)->queued_bytes() == 0) ++ok;  // written by then
    (*ch)->Close();
    if (!(*ch)->TrySend(later)) ++ok;  // closed: refused
    co_return ok;
  };
  EXPECT_EQ(RunClient(run()), 4);
}

// A corked channel writes nothing, and no write is posted for later;
// Uncork() writes every queued frame before it returns, in order (the relay
// corks the frames of each Send; relay_load each fixed-rate send, or with
// --tick-writes batch a tick's sends). Frames corked behind a pending posted
// write join that write. On a closed channel Uncork() writes nothing.
TEST_F(ChannelTest, UncorkWritesWhatCorkHeld) {
  EchoServer server(ChannelKind::kClientToRelay, server_key_, &open_psk_, ChannelLimits{});
  auto run = [&]() -> asio::awaitable<int> {
    auto ch = co_await Channel::Connect("127.0.0.1", server.port(), RelayClient(open_psk_),
                                        crypto::SystemRandom());
    if (!ch) co_return -1;
    int ok = 0;
    const Bytes first = {'f', 'i', 'r', 's', 't'};
    const Bytes second = {'s', 'e', 'c', 'o', 'n', 'd'};
    (*ch)->Cork();
    if ((*ch)->TrySend(first) && (*ch)->TrySend(second)) ++ok;
    const std::size_t queued = (*ch)->queued_bytes();
    asio::steady_timer pause(co_await asio::this_coro::executor);
    pause.expires_after(50ms);  // a posted write would run meanwhile
    co_await pause.async_wait(asio::use_awaitable);
    if (queued > 0 && (*ch)->queued_bytes() == queued) ++ok;  // nothing written
    (*ch)->Uncork();
    if (!(*ch)->corked() && (*ch)->queued_bytes() == 0) ++ok;  // written before returning
    auto back = co_await (*ch)->Receive();
    if (back && *back == first) ++ok;
    back = co_await (*ch)->Receive();
    if (back && *back == second) ++ok;

    // Behind a posted write: Uncork writes nothing itself; both frames
    // leave with the posted write, in order.
    if ((*ch)->TrySend(first)) ++ok;
    (*ch)->Cork();
    if ((*ch)->TrySend(second)) ++ok;
    const std::size_t both = (*ch)->queued_bytes();
    (*ch)->Uncork();
    if (both > 0 && (*ch)->queued_bytes() == both) ++ok;
    back = co_await (*ch)->Receive();
    if (back && *back == first) ++ok;
    back = co_await (*ch)->Receive();
    if (back && *back == second) ++ok;

    // Closed while corked: the queued frame is never written.
    (*ch)->Cork();
    if ((*ch)->TrySend(first)) ++ok;
    const std::size_t left = (*ch)->queued_bytes();
    (*ch)->Close();
    (*ch)->Uncork();
    if (left > 0 && (*ch)->queued_bytes() == left) ++ok;
    co_return ok;
  };
  EXPECT_EQ(RunClient(run()), 12);
}

// A raw TCP peer that misbehaves, while a well-behaved client keeps working.
class HostilePeerTest : public ChannelTest {
 protected:
  ChannelLimits Tight() {
    ChannelLimits l;
    l.handshake_timeout = 300ms;
    l.idle_timeout = 600ms;
    l.write_timeout = 600ms;
    return l;
  }

  // Sends `bytes` on a raw connection, then waits up to `wait` for the server to
  // close it. Returns true if the server closed the connection.
  static bool ServerCutsOff(std::uint16_t port, const Bytes& bytes, std::chrono::milliseconds wait) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    asio::error_code ec;
    if (!bytes.empty()) asio::write(s, asio::buffer(bytes), ec);
    bool closed = false;
    std::array<std::uint8_t, 1024> buf{};
    s.async_read_some(asio::buffer(buf), [&](asio::error_code e, std::size_t) {
      closed = static_cast<bool>(e);  // EOF or reset
    });
    io.run_for(wait);
    return closed;
  }
};

// A peer that finishes the handshake and keeps sending but never reads what
// comes back: the server's writes stop making progress and the write
// deadline closes the connection; another client is served meanwhile.
TEST_F(HostilePeerTest, PeerThatNeverReadsIsCutOffAtTheWriteDeadline) {
  EchoServer server(ChannelKind::kClientToRelay, server_key_, &open_psk_, Tight());
  auto flood = [&]() -> asio::awaitable<int> {
    auto ch = co_await Channel::Connect("127.0.0.1", server.port(), RelayClient(open_psk_),
                                        crypto::SystemRandom());
    if (!ch) co_return -1;
    const Bytes big(16 * 1024, 0x61);
    int sent = 0;
    // Never Receive(): the echoes fill this side's socket. TrySend, not Send:
    // this side's own queue may fill too once the server stops reading.
    for (int i = 0; i < 2000 && (*ch)->is_open(); ++i) {
      if (!(*ch)->TrySend(big)) break;
      ++sent;
      asio::steady_timer pause(co_await asio::this_coro::executor, 1ms);
      co_await pause.async_wait(asio::use_awaitable);
      if (server.closed_after_established.load() > 0) break;
    }
    co_return sent;
  };
  EXPECT_GT(RunClient(flood(), 30s), 0);
  for (int i = 0; i < 50 && server.closed_after_established.load() == 0; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(server.closed_after_established.load(), 1) << "the silent reader was never cut off";
  EXPECT_EQ(RunClient(EchoRoundTrips(server.port(), RelayClient(open_psk_), 5)), 5);
}

TEST_F(HostilePeerTest, GarbageIsCutOffAndOthersKeepWorking) {
  EchoServer server(ChannelKind::kClientToRelay, server_key_, &open_psk_, Tight());
  Bytes garbage(200);
  crypto::DeterministicRandom(5).Fill(garbage);
  garbage[0] = 0;
  garbage[1] = 198;
  EXPECT_TRUE(ServerCutsOff(server.port(), garbage, 2000ms));
  EXPECT_EQ(RunClient(EchoRoundTrips(server.port(), RelayClient(open_psk_), 5)), 5);
}

TEST_F(HostilePeerTest, NeverFinishedHandshakeIsCutOffAtTheHandshakeDeadline) {
  EchoServer server(ChannelKind::kClientToRelay, server_key_, &open_psk_, Tight());
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(ServerCutsOff(server.port(), {}, 3000ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms) << "cut off before the deadline";
  EXPECT_EQ(RunClient(EchoRoundTrips(server.port(), RelayClient(open_psk_), 5)), 5);
}

TEST_F(HostilePeerTest, SlowlorisStoppingMidFrameIsCutOff) {
  EchoServer server(ChannelKind::kClientToRelay, server_key_, &open_psk_, Tight());
  Bytes half_frame = {0x00, 0x30, 0x01, 0x02, 0x03};  // promises 48 bytes, sends 3
  EXPECT_TRUE(ServerCutsOff(server.port(), half_frame, 3000ms));
  EXPECT_EQ(RunClient(EchoRoundTrips(server.port(), RelayClient(open_psk_), 5)), 5);
}

TEST_F(HostilePeerTest, OversizedFrameIsCutOffFromItsLengthPrefix) {
  EchoServer server(ChannelKind::kClientToRelay, server_key_, &open_psk_, Tight());
  Bytes flood = {0xFF, 0xFF};
  flood.resize(2 + 8192, 0x41);  // a 65535-byte frame announced in the handshake
  EXPECT_TRUE(ServerCutsOff(server.port(), flood, 2000ms));
  EXPECT_EQ(RunClient(EchoRoundTrips(server.port(), RelayClient(open_psk_), 5)), 5);
}

TEST_F(HostilePeerTest, EstablishedPeerThatGoesSilentIsCutOffAtTheIdleDeadline) {
  EchoServer server(ChannelKind::kClientToRelay, server_key_, &open_psk_, Tight());
  auto closed = RunClient([&]() -> asio::awaitable<bool> {
    auto ch = co_await Channel::Connect("127.0.0.1", server.port(), RelayClient(open_psk_),
                                        crypto::SystemRandom());
    if (!ch) co_return false;
    auto r = co_await (*ch)->Receive();  // we send nothing; the server must give up
    co_return !r;
  }());
  EXPECT_TRUE(closed);
  EXPECT_EQ(server.closed_after_established.load(), 1);
}

}  // namespace
}  // namespace rhizome::net
