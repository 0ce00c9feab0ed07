// Secure channel benchmarks (issue 3 §6): measured, never asserted (DESIGN §14).
//
// 1. Handshakes per second on the RESPONDER side, NKpsk0 (client -> relay) and
//    XK (peer link): SecureSession::Create for the responder (which draws its
//    ephemeral key), feeding it the initiator's messages, producing its reply,
//    destroying the session. The initiator's work is kept out of the timed
//    region:
//    - NKpsk0: the responder's whole part is "read message 1, write message 2",
//      so a pool of initiator first messages is generated before the loop and
//      replayed (a responder keeps no replay state: each is a fresh handshake).
//    - XK: message 3 depends on the responder's reply, so each iteration runs a
//      full handshake and pauses the timers (PauseTiming/ResumeTiming) around
//      the initiator's steps. BM_PauseResumeTwice measures what those two
//      pause/resume pairs leak into the timed region.
//    BM_Handshake_Full_* time both sides (no pauses) as a cross-check, and
//    BM_Paired_* time a responder handshake and its crypto floor back to back
//    in each iteration (thread CPU clock), so the ratio holds up on a busy
//    machine.
// 2. The crypto floor with raw libsodium: one X25519 key generation plus the
//    DH operations the responder's side of the pattern needs:
//      NKpsk0  -> psk, e, es  <- e, ee       responder: keygen + es + ee      = 1 + 2 DH
//      XK      -> e, es  <- e, ee  -> s, se  responder: keygen + es + ee + se = 1 + 3 DH
// 3. Transport over loopback TCP through real net::Channels (NKpsk0 channel),
//    ONE-WAY: the client sends batches of 1 MiB (1024 x 1 KiB or 64 x 16 KiB
//    messages), each followed by a 1-byte end-of-batch marker; the server (own
//    thread and io_context) receives and size-checks every message and answers
//    each marker with the byte count it received (8 bytes), which the client
//    checks. One benchmark iteration = one batch.
//    - BM_Channel_Loopback_OneWay streams: iteration i queues batch i and waits
//      for the ack of batch i-1 (the last iteration waits for its own), so the
//      client seals while the server decrypts. Wall-clock time; the CPU column
//      is the process CPU time of both threads (MeasureProcessCPUTime).
//    - BM_Paired_ChannelVsAead stops and waits (each batch fully acknowledged),
//      then runs raw AEAD encrypt + decrypt of the same messages, both timed on
//      the wall clock in the same iteration: a conservative ratio that holds up
//      on a busy machine.
//    Beside them: raw ChaCha20-Poly1305-IETF encrypt + decrypt of the same
//    sizes (libsodium, one thread), and the sans-IO SecureSession alone (Seal
//    + OnBytes in memory, no sockets).
//
// After the run a summary prints the ratios the issue asks for (targets >= 0.5):
// handshakes/s / floor/s (CPU time), channel MB/s / raw AEAD MB/s (wall time),
// and, less sensitive to other load, MB per CPU-second of the channel (both
// threads, user + kernel) against MB per CPU-second of the raw AEAD.
// Medians are used when --benchmark_repetitions is given.
//
// Everything runs on 127.0.0.1, bounded in count (Google Benchmark's iteration
// budget) and time (every wait on the network has a deadline).
#include <benchmark/benchmark.h>
#include <sodium.h>
#include <time.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/net/channel.h"
#include "rhizome/protocol/secure_session.h"
#include "summary_reporter.h"

namespace {

namespace rc = rhizome::crypto;
namespace rp = rhizome::protocol;
namespace rn = rhizome::net;
using rhizome::ByteArray;
using rhizome::Bytes;
using rhizome::ByteSpan;
using rhizome::bench::Figures;
using rhizome::bench::FiguresByName;
using rp::ChannelKind;
using rp::SecureSession;
using rp::SecureSessionConfig;

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

// ---- Keys and configs --------------------------------------------------------

struct Keys {
  rc::X25519KeyPair relay = rc::X25519Generate(rc::SystemRandom());
  rc::X25519KeyPair peer_responder = rc::X25519Generate(rc::SystemRandom());
  rc::X25519KeyPair peer_initiator = rc::X25519Generate(rc::SystemRandom());
  // A closed relay's access key (an open relay's is all zeros: same cost).
  rc::SecretBytes psk = rc::SecretBytes::Random(rc::SystemRandom(), 32);
};

// Created on first use, after crypto::Init() in main().
Keys& K() {
  static Keys keys;
  return keys;
}

SecureSessionConfig ResponderConfig(ChannelKind kind) {
  SecureSessionConfig c;
  c.kind = kind;
  c.role = rc::NoiseRole::kResponder;
  if (kind == ChannelKind::kClientToRelay) {
    c.local_statics = {&K().relay};
    c.psk = &K().psk;
  } else {
    c.local_statics = {&K().peer_responder};
    c.authorize_initiator = [](ByteSpan k) {
      return rhizome::ConstantTimeEqual(k, K().peer_initiator.public_key);
    };
  }
  return c;
}

SecureSessionConfig InitiatorConfig(ChannelKind kind) {
  SecureSessionConfig c;
  c.kind = kind;
  c.role = rc::NoiseRole::kInitiator;
  if (kind == ChannelKind::kClientToRelay) {
    c.remote_static = K().relay.public_key;
    c.psk = &K().psk;
  } else {
    c.local_statics = {&K().peer_initiator};
    c.remote_static = K().peer_responder.public_key;
  }
  return c;
}

SecureSession MustCreate(const SecureSessionConfig& cfg) {
  auto s = SecureSession::Create(cfg, rc::SystemRandom());
  if (!s) {
    std::fprintf(stderr, "SecureSession::Create failed: %s\n", s.error().message);
    std::abort();
  }
  return std::move(*s);
}

// Runs one complete in-memory handshake; returns the established pair
// (initiator, responder) or aborts. Used to check the benchmarks' setup.
std::pair<SecureSession, SecureSession> Handshake(ChannelKind kind) {
  SecureSession ini = MustCreate(InitiatorConfig(kind));
  SecureSession resp = MustCreate(ResponderConfig(kind));
  Bytes to_resp, to_ini;
  std::vector<Bytes> rx;
  if (!ini.Start(to_resp)) std::abort();
  while (!(ini.established() && resp.established())) {
    if (!to_resp.empty()) {
      if (!resp.OnBytes(to_resp, to_ini, rx)) std::abort();
      to_resp.clear();
    } else if (!to_ini.empty()) {
      if (!ini.OnBytes(to_ini, to_resp, rx)) std::abort();
      to_ini.clear();
    } else {
      std::abort();  // stuck
    }
  }
  if (!rhizome::ConstantTimeEqual(ini.handshake_hash(), resp.handshake_hash())) std::abort();
  return {std::move(ini), std::move(resp)};
}

// ---- 1. Responder handshakes ---------------------------------------------------

// NKpsk0: message 1 comes from a pool generated before the loop.
void BM_Handshake_Responder_NKpsk0(benchmark::State& state) {
  constexpr std::size_t kPool = 64;
  std::vector<Bytes> first;
  for (std::size_t i = 0; i < kPool; ++i) {
    SecureSession ini = MustCreate(InitiatorConfig(ChannelKind::kClientToRelay));
    Bytes m1;
    if (!ini.Start(m1)) std::abort();
    first.push_back(std::move(m1));
  }
  const SecureSessionConfig cfg = ResponderConfig(ChannelKind::kClientToRelay);
  Bytes out;
  std::vector<Bytes> rx;
  std::size_t i = 0;
  for (auto _ : state) {
    auto resp = SecureSession::Create(cfg, rc::SystemRandom());
    out.clear();
    if (!resp || !resp->OnBytes(first[i++ % kPool], out, rx) || !resp->established() ||
        out.empty()) {
      state.SkipWithError("responder handshake failed");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["handshakes_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// XK: a full handshake per iteration, the initiator's steps untimed.
void BM_Handshake_Responder_XK(benchmark::State& state) {
  const SecureSessionConfig ini_cfg = InitiatorConfig(ChannelKind::kPeerLink);
  const SecureSessionConfig cfg = ResponderConfig(ChannelKind::kPeerLink);
  std::optional<SecureSession> ini;
  Bytes m1, m2, m3, none;
  std::vector<Bytes> rx;
  for (auto _ : state) {
    state.PauseTiming();
    ini.reset();  // the previous initiator is destroyed off the clock
    ini.emplace(MustCreate(ini_cfg));
    m1.clear();
    m2.clear();
    m3.clear();
    if (!ini->Start(m1)) std::abort();
    state.ResumeTiming();

    auto resp = SecureSession::Create(cfg, rc::SystemRandom());
    if (!resp || !resp->OnBytes(m1, m2, rx)) {
      state.SkipWithError("responder failed on message 1");
      break;
    }

    state.PauseTiming();
    if (!ini->OnBytes(m2, m3, rx) || !ini->established()) std::abort();
    state.ResumeTiming();

    if (!resp->OnBytes(m3, none, rx) || !resp->established()) {
      state.SkipWithError("responder failed on message 3");
      break;
    }
    benchmark::DoNotOptimize(resp->handshake_hash().data());
  }
  state.counters["handshakes_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// What two PauseTiming/ResumeTiming pairs leak into the timed region (the XK
// responder benchmark uses two per iteration).
void BM_PauseResumeTwice(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    state.ResumeTiming();
    state.PauseTiming();
    state.ResumeTiming();
  }
}

// Both sides of a full handshake, no pauses (context for the figures above).
void BM_Handshake_Full(benchmark::State& state, ChannelKind kind) {
  for (auto _ : state) {
    auto pair = Handshake(kind);
    benchmark::DoNotOptimize(pair.first.handshake_hash().data());
  }
  state.counters["handshakes_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// ---- 2. Crypto floor (raw libsodium) --------------------------------------------

struct FloorKeys {
  unsigned char static_sk[32];  // responder static
  unsigned char peer_e_pk[32];  // initiator ephemeral
  unsigned char peer_s_pk[32];  // initiator static (XK: se)
  FloorKeys() {
    unsigned char sk[32];
    randombytes_buf(static_sk, sizeof static_sk);
    randombytes_buf(sk, sizeof sk);
    if (crypto_scalarmult_base(peer_e_pk, sk) != 0) std::abort();
    randombytes_buf(sk, sizeof sk);
    if (crypto_scalarmult_base(peer_s_pk, sk) != 0) std::abort();
    sodium_memzero(sk, sizeof sk);
  }
};

// One responder's floor: keygen (random scalar + base multiplication), then
// ee = DH(e, re), es = DH(s, re) and, for XK, se = DH(e, rs).
inline int FloorOnce(const FloorKeys& k, int dh_count) {
  unsigned char e_sk[32], e_pk[32], shared[32];
  int rc = 0;
  randombytes_buf(e_sk, sizeof e_sk);
  rc |= crypto_scalarmult_base(e_pk, e_sk);
  rc |= crypto_scalarmult(shared, e_sk, k.peer_e_pk);  // ee
  benchmark::DoNotOptimize(shared);
  rc |= crypto_scalarmult(shared, k.static_sk, k.peer_e_pk);  // es
  benchmark::DoNotOptimize(shared);
  if (dh_count == 3) {
    rc |= crypto_scalarmult(shared, e_sk, k.peer_s_pk);  // se
    benchmark::DoNotOptimize(shared);
  }
  benchmark::DoNotOptimize(e_pk);
  sodium_memzero(e_sk, sizeof e_sk);
  return rc;
}

void BM_CryptoFloor(benchmark::State& state, int dh_count) {
  FloorKeys keys;
  for (auto _ : state) {
    if (FloorOnce(keys, dh_count) != 0) {
      state.SkipWithError("X25519 failed");
      break;
    }
  }
  state.counters["floor_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// ---- Diagnostics: what the handshake figures decompose into ---------------------

void BM_Diag_X25519Keygen_Raw(benchmark::State& state) {
  unsigned char sk[32], pk[32];
  for (auto _ : state) {
    randombytes_buf(sk, sizeof sk);
    benchmark::DoNotOptimize(crypto_scalarmult_base(pk, sk));
    benchmark::DoNotOptimize(pk);
  }
  sodium_memzero(sk, sizeof sk);
}

void BM_Diag_X25519DH_Raw(benchmark::State& state) {
  FloorKeys keys;
  unsigned char shared[32];
  for (auto _ : state) {
    benchmark::DoNotOptimize(crypto_scalarmult(shared, keys.static_sk, keys.peer_e_pk));
    benchmark::DoNotOptimize(shared);
  }
}

// One guarded secret allocation and its release (sodium_malloc + sodium_free:
// mmap, mprotect, mlock, madvise ... munmap). A responder handshake makes
// three: the handshake's secret arena and the two transport keys of Split().
void BM_Diag_SecretBytesAllocFree(benchmark::State& state) {
  for (auto _ : state) {
    rc::SecretBytes secret(32);
    benchmark::DoNotOptimize(secret.expose().data());
  }
}

// ---- Paired: responder handshake and floor back to back -------------------------

double ThreadCpuNow() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Each iteration: one responder handshake (initiator work untimed) and one
// floor operation, each timed on the thread CPU clock. Reports the ratio of
// the totals, so slow phases of a shared machine hit both sides alike.
void BM_Paired_HandshakeVsFloor(benchmark::State& state, ChannelKind kind) {
  const int dh_count = kind == ChannelKind::kClientToRelay ? 2 : 3;
  const SecureSessionConfig ini_cfg = InitiatorConfig(kind);
  const SecureSessionConfig cfg = ResponderConfig(kind);
  FloorKeys keys;
  double hs_seconds = 0, floor_seconds = 0;
  Bytes m1, m2, m3, none;
  std::vector<Bytes> rx;
  for (auto _ : state) {
    std::optional<SecureSession> ini(MustCreate(ini_cfg));
    m1.clear();
    m2.clear();
    m3.clear();
    if (!ini->Start(m1)) std::abort();

    double t0 = ThreadCpuNow();
    {
      auto resp = SecureSession::Create(cfg, rc::SystemRandom());
      if (!resp || !resp->OnBytes(m1, m2, rx)) std::abort();
      double t1 = ThreadCpuNow();
      if (kind == ChannelKind::kPeerLink) {
        if (!ini->OnBytes(m2, m3, rx) || !ini->established()) std::abort();
        double t2 = ThreadCpuNow();
        if (!resp->OnBytes(m3, none, rx) || !resp->established()) std::abort();
        t0 += t2 - t1;  // drop the initiator's step
      } else if (!resp->established()) {
        std::abort();
      }
      // resp is destroyed at the end of this scope, on the clock.
    }
    double t3 = ThreadCpuNow();
    hs_seconds += t3 - t0;
    if (FloorOnce(keys, dh_count) != 0) std::abort();
    floor_seconds += ThreadCpuNow() - t3;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["hs_us"] = hs_seconds / n * 1e6;
  state.counters["floor_us"] = floor_seconds / n * 1e6;
  state.counters["ratio"] = hs_seconds > 0 ? floor_seconds / hs_seconds : 0;
}

// ---- 3. Transport ------------------------------------------------------------------

constexpr std::size_t kBatchBytes = 1 << 20;  // one benchmark iteration
constexpr auto kNetDeadline = std::chrono::seconds(30);

// Raw ChaCha20-Poly1305-IETF (the Noise cipher) encrypt + decrypt.
void BM_RawAead_EncryptDecrypt(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  unsigned char key[crypto_aead_chacha20poly1305_ietf_KEYBYTES];
  unsigned char nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES] = {};
  crypto_aead_chacha20poly1305_ietf_keygen(key);
  std::vector<unsigned char> plain(size, 0x5a), cipher(size + 16), back(size);
  std::uint64_t n = 0;
  for (auto _ : state) {
    std::memcpy(nonce + 4, &n, sizeof n);
    ++n;
    unsigned long long clen = 0, mlen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(cipher.data(), &clen, plain.data(), size, nullptr, 0,
                                              nullptr, nonce, key);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(back.data(), &mlen, nullptr, cipher.data(), clen,
                                                  nullptr, 0, nonce, key) != 0) {
      state.SkipWithError("decrypt failed");
      break;
    }
    benchmark::DoNotOptimize(back.data());
  }
  sodium_memzero(key, sizeof key);
  const double bytes = static_cast<double>(state.iterations()) * static_cast<double>(size);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(state.iterations());
  state.counters["MB_per_s"] = benchmark::Counter(bytes / 1e6, benchmark::Counter::kIsRate);
}

// The sans-IO session alone: one side Seals a batch into memory, the other
// OnBytes it in 64 KiB reads (as the channel does), no sockets.
void BM_Session_SealOnBytes(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const std::size_t count = kBatchBytes / size;
  auto [client, server] = Handshake(ChannelKind::kClientToRelay);
  Bytes msg(size, 0x5a), wire, none;
  std::vector<Bytes> rx;
  for (auto _ : state) {
    wire.clear();
    for (std::size_t i = 0; i < count; ++i) {
      if (!client.Seal(msg, wire)) std::abort();
    }
    rx.clear();
    for (std::size_t pos = 0; pos < wire.size(); pos += 64 * 1024) {
      const std::size_t n = std::min<std::size_t>(64 * 1024, wire.size() - pos);
      if (!server.OnBytes(ByteSpan(wire).subspan(pos, n), none, rx)) std::abort();
    }
    if (rx.size() != count) std::abort();
    benchmark::DoNotOptimize(rx.data());
  }
  const double bytes = static_cast<double>(state.iterations()) * static_cast<double>(count * size);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(count));
  state.counters["MB_per_s"] = benchmark::Counter(bytes / 1e6, benchmark::Counter::kIsRate);
}

// A one-way sink on 127.0.0.1, on its own thread: receives messages, checks
// their size, answers each 1-byte end-of-batch marker with the number of
// payload bytes received since the previous marker (8 bytes, little endian).
class SinkServer {
 public:
  explicit SinkServer(std::size_t expected_size)
      : expected_size_(expected_size),
        acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io_, Accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~SinkServer() {
    io_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::atomic<bool> bad{false};

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
      if (ec) co_return;
      asio::co_spawn(io_, Serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> Serve(asio::ip::tcp::socket socket) {
    auto session =
        SecureSession::Create(ResponderConfig(ChannelKind::kClientToRelay), rc::SystemRandom());
    if (!session) co_return;
    auto ch = co_await rn::Channel::Establish(std::move(socket), std::move(*session));
    if (!ch) co_return;
    std::uint64_t received = 0;
    for (;;) {
      auto msg = co_await (*ch)->Receive();
      if (!msg) break;
      if (msg->size() == 1) {
        std::uint8_t ack[8];
        std::memcpy(ack, &received, sizeof ack);
        received = 0;
        if (!co_await (*ch)->Send(ByteSpan(ack, sizeof ack))) break;
      } else if (msg->size() == expected_size_) {
        received += msg->size();
      } else {
        bad = true;
        break;
      }
    }
    (*ch)->Close();
  }

  std::size_t expected_size_;
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
};

// Drives `io` until `done()` or the deadline; false on timeout.
template <class Pred>
bool RunUntil(asio::io_context& io, Pred done) {
  const auto give_up = std::chrono::steady_clock::now() + kNetDeadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    io.run_one_for(std::chrono::milliseconds(100));
  }
  return true;
}

// A client channel to a SinkServer, driven on the benchmark thread. Batches
// are queued in order (the next one starts only once the previous one is
// fully queued); a receiver coroutine counts and checks the acks.
class LoopbackClient {
 public:
  explicit LoopbackClient(std::size_t size)
      : size_(size), count_(kBatchBytes / size), server_(size), msg_(size, 0x5a) {
    // Shared with the coroutine, which may outlive this scope on a timeout.
    auto connected = std::make_shared<bool>(false);
    asio::co_spawn(
        io_,
        [this, connected]() -> asio::awaitable<void> {
          auto r = co_await rn::Channel::Connect("127.0.0.1", server_.port(),
                                                 InitiatorConfig(ChannelKind::kClientToRelay),
                                                 rc::SystemRandom());
          if (r) ch_ = *r;
          *connected = true;
        },
        asio::detached);
    if (!RunUntil(io_, [&] { return *connected; }) || !ch_) {
      ch_.reset();
      return;
    }
    asio::co_spawn(
        io_,
        [this]() -> asio::awaitable<void> {
          for (;;) {
            auto ack = co_await ch_->Receive();
            if (!ack) break;
            std::uint64_t bytes = 0;
            if (ack->size() == sizeof bytes) std::memcpy(&bytes, ack->data(), sizeof bytes);
            if (bytes != count_ * size_) bad_ = true;
            ++acks_;
          }
          closed_ = true;
        },
        asio::detached);
  }
  ~LoopbackClient() {
    if (ch_) ch_->Close();
    io_.run_for(std::chrono::milliseconds(10));
  }
  bool connected() const { return ch_ != nullptr; }
  std::size_t count() const { return count_; }

  // Queues one batch (count() messages, then the marker) and waits until it is
  // queued and every batch before it (wait_for_own_ack: it too) is acknowledged.
  // False on a failure, a wrong ack or a timeout.
  bool SendBatch(bool wait_for_own_ack) {
    struct Progress {
      bool queued = false;
      bool ok = true;
    };
    // Shared with the coroutine, which may outlive this call on a timeout.
    auto p = std::make_shared<Progress>();
    asio::co_spawn(
        io_,
        [this, p]() -> asio::awaitable<void> {
          for (std::size_t i = 0; i < count_ && p->ok; ++i) {
            p->ok = static_cast<bool>(co_await ch_->Send(msg_));
          }
          static constexpr std::uint8_t kMarker = 1;
          if (p->ok) p->ok = static_cast<bool>(co_await ch_->Send(ByteSpan(&kMarker, 1)));
          p->queued = true;
        },
        asio::detached);
    const std::uint64_t want = wait_for_own_ack ? sent_ + 1 : sent_;
    ++sent_;
    const bool in_time = RunUntil(io_, [&] { return closed_ || (p->queued && acks_ >= want); });
    return in_time && p->ok && !closed_ && !bad_ && !server_.bad;
  }
  // Waits until every batch is acknowledged.
  bool Drain() {
    return RunUntil(io_, [&] { return closed_ || acks_ == sent_; }) && !closed_ && !bad_;
  }

 private:
  std::size_t size_;
  std::size_t count_;
  SinkServer server_;
  Bytes msg_;
  asio::io_context io_;
  std::shared_ptr<rn::Channel> ch_;
  std::uint64_t sent_ = 0;
  std::uint64_t acks_ = 0;
  bool bad_ = false;
  bool closed_ = false;
};

// Streaming: iteration i queues batch i and waits for the ack of batch i-1, so
// one batch is in flight while the next is sealed (the client encrypts while
// the server decrypts); the last iteration also waits for its own ack.
void BM_Channel_Loopback_OneWay(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  LoopbackClient client(size);
  if (!client.connected()) {
    state.SkipWithError("cannot connect to the loopback server");
    return;
  }
  benchmark::IterationCount i = 0;
  for (auto _ : state) {
    const bool last = ++i == state.max_iterations;
    if (!client.SendBatch(/*wait_for_own_ack=*/false) || (last && !client.Drain())) {
      state.SkipWithError("transfer failed or timed out");
      break;
    }
  }
  const double bytes =
      static_cast<double>(state.iterations()) * static_cast<double>(client.count() * size);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(client.count()));
  state.counters["MB_per_s"] = benchmark::Counter(bytes / 1e6, benchmark::Counter::kIsRate);
}

double WallNow() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Each iteration: one 1 MiB batch through the loopback channel, then raw AEAD
// encrypt + decrypt of the same messages, both on the wall clock. Reports
// the ratio of the throughputs over the whole run, so slow phases of a shared
// machine hit both sides alike.
void BM_Paired_ChannelVsAead(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  LoopbackClient client(size);
  if (!client.connected()) {
    state.SkipWithError("cannot connect to the loopback server");
    return;
  }
  unsigned char key[crypto_aead_chacha20poly1305_ietf_KEYBYTES];
  unsigned char nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES] = {};
  crypto_aead_chacha20poly1305_ietf_keygen(key);
  std::vector<unsigned char> plain(size, 0x5a), cipher(size + 16), back(size);
  std::uint64_t n = 0;
  double channel_seconds = 0, aead_seconds = 0;
  for (auto _ : state) {
    double t0 = WallNow();
    if (!client.SendBatch(/*wait_for_own_ack=*/true)) {
      state.SkipWithError("transfer failed or timed out");
      break;
    }
    double t1 = WallNow();
    for (std::size_t i = 0; i < client.count(); ++i) {
      std::memcpy(nonce + 4, &n, sizeof n);
      ++n;
      unsigned long long clen = 0, mlen = 0;
      crypto_aead_chacha20poly1305_ietf_encrypt(cipher.data(), &clen, plain.data(), size, nullptr,
                                                0, nullptr, nonce, key);
      if (crypto_aead_chacha20poly1305_ietf_decrypt(back.data(), &mlen, nullptr, cipher.data(),
                                                    clen, nullptr, 0, nonce, key) != 0) {
        std::abort();
      }
      benchmark::DoNotOptimize(back.data());
    }
    aead_seconds += WallNow() - t1;
    channel_seconds += t1 - t0;
  }
  sodium_memzero(key, sizeof key);
  const double mb =
      static_cast<double>(state.iterations()) * static_cast<double>(client.count() * size) / 1e6;
  if (channel_seconds > 0 && aead_seconds > 0) {
    state.counters["channel_MB_per_s"] = mb / channel_seconds;
    state.counters["aead_MB_per_s"] = mb / aead_seconds;
    state.counters["ratio"] = aead_seconds / channel_seconds;
  }
}

// ---- Registration and summary ------------------------------------------------------

void Register() {
  benchmark::RegisterBenchmark("BM_Handshake_Responder_NKpsk0", BM_Handshake_Responder_NKpsk0);
  benchmark::RegisterBenchmark("BM_Handshake_Responder_XK", BM_Handshake_Responder_XK);
  benchmark::RegisterBenchmark("BM_PauseResumeTwice", BM_PauseResumeTwice);
  benchmark::RegisterBenchmark("BM_CryptoFloor_NKpsk0_Keygen_2DH", BM_CryptoFloor, 2);
  benchmark::RegisterBenchmark("BM_CryptoFloor_XK_Keygen_3DH", BM_CryptoFloor, 3);
  benchmark::RegisterBenchmark("BM_Diag_X25519Keygen_Raw", BM_Diag_X25519Keygen_Raw);
  benchmark::RegisterBenchmark("BM_Diag_X25519DH_Raw", BM_Diag_X25519DH_Raw);
  benchmark::RegisterBenchmark("BM_Diag_SecretBytesAllocFree", BM_Diag_SecretBytesAllocFree);
  benchmark::RegisterBenchmark("BM_Handshake_Full_NKpsk0", BM_Handshake_Full,
                               ChannelKind::kClientToRelay);
  benchmark::RegisterBenchmark("BM_Handshake_Full_XK", BM_Handshake_Full, ChannelKind::kPeerLink);
  benchmark::RegisterBenchmark("BM_Paired_HandshakeVsFloor_NKpsk0", BM_Paired_HandshakeVsFloor,
                               ChannelKind::kClientToRelay);
  benchmark::RegisterBenchmark("BM_Paired_HandshakeVsFloor_XK", BM_Paired_HandshakeVsFloor,
                               ChannelKind::kPeerLink);
  for (int size : {1024, 16384}) {
    benchmark::RegisterBenchmark("BM_RawAead_EncryptDecrypt", BM_RawAead_EncryptDecrypt)
        ->Arg(size)
        ->UseRealTime();
    benchmark::RegisterBenchmark("BM_Session_SealOnBytes", BM_Session_SealOnBytes)
        ->Arg(size)
        ->UseRealTime();
    benchmark::RegisterBenchmark("BM_Channel_Loopback_OneWay", BM_Channel_Loopback_OneWay)
        ->Arg(size)
        ->UseRealTime()
        ->MeasureProcessCPUTime();  // CPU column: both threads (client and server)
    benchmark::RegisterBenchmark("BM_Paired_ChannelVsAead", BM_Paired_ChannelVsAead)
        ->Arg(size)
        ->UseRealTime();
  }
}

void PrintSummary(const FiguresByName& f) {
  auto get = [&](const std::string& k) -> const Figures* {
    auto it = f.find(k);
    return it == f.end() ? nullptr : &it->second;
  };
  std::printf("\n== Summary: secure channel (issue 3 section 6), targets >= 0.5 ==\n");
  std::printf("Handshakes, responder side (CPU time per handshake):\n");
  const Figures* pause = get("BM_PauseResumeTwice");
  for (const auto& [name, floor_name] :
       {std::pair<std::string, std::string>{"NKpsk0", "BM_CryptoFloor_NKpsk0_Keygen_2DH"},
        {"XK", "BM_CryptoFloor_XK_Keygen_3DH"}}) {
    const Figures* hs = get("BM_Handshake_Responder_" + name);
    const Figures* fl = get(floor_name);
    if (hs && fl && hs->cpu_ns > 0 && fl->cpu_ns > 0) {
      std::printf("  %-6s %9.0f handshakes/s (%7.1f us) | floor %9.0f /s (%7.1f us) | ratio %.2f\n",
                  name.c_str(), 1e9 / hs->cpu_ns, hs->cpu_ns / 1e3, 1e9 / fl->cpu_ns,
                  fl->cpu_ns / 1e3, fl->cpu_ns / hs->cpu_ns);
      if (name == "XK" && pause && hs->cpu_ns > pause->cpu_ns) {
        const double adj = hs->cpu_ns - pause->cpu_ns;
        std::printf("  %-6s %9.0f handshakes/s less the pause/resume leak (%.2f us) | ratio %.2f\n",
                    name.c_str(), 1e9 / adj, pause->cpu_ns / 1e3, fl->cpu_ns / adj);
      }
    }
    const Figures* pair = get("BM_Paired_HandshakeVsFloor_" + name);
    if (pair && pair->counters.count("ratio")) {
      std::printf("  %-6s paired: handshake %.1f us, floor %.1f us, ratio %.2f\n", name.c_str(),
                  pair->counters.at("hs_us").value, pair->counters.at("floor_us").value,
                  pair->counters.at("ratio").value);
    }
  }
  const Figures* kg = get("BM_Diag_X25519Keygen_Raw");
  const Figures* dh = get("BM_Diag_X25519DH_Raw");
  const Figures* alloc = get("BM_Diag_SecretBytesAllocFree");
  if (kg && dh && alloc) {
    std::printf(
        "  parts: X25519 keygen %.1f us, X25519 DH %.1f us, one secret alloc+free %.1f us\n",
        kg->cpu_ns / 1e3, dh->cpu_ns / 1e3, alloc->cpu_ns / 1e3);
  }
  std::printf("Transport, one-way over loopback TCP (wall time):\n");
  for (const char* size : {"1024", "16384"}) {
    const Figures* ch = get(std::string("BM_Channel_Loopback_OneWay/") + size);
    const Figures* raw = get(std::string("BM_RawAead_EncryptDecrypt/") + size);
    const Figures* ses = get(std::string("BM_Session_SealOnBytes/") + size);
    const std::size_t bytes = static_cast<std::size_t>(std::atoi(size));
    auto mbps = [](const Figures* x) {
      return x && x->counters.count("MB_per_s") ? x->counters.at("MB_per_s").value : 0.0;
    };
    if (ch && raw && mbps(raw) > 0) {
      std::printf(
          "  %5zu B: channel %8.1f MB/s (%9.0f msg/s) | raw AEAD enc+dec %8.1f MB/s | "
          "ratio %.2f\n",
          bytes, mbps(ch), mbps(ch) * 1e6 / static_cast<double>(bytes), mbps(raw),
          mbps(ch) / mbps(raw));
      // Per CPU-second: the channel's process CPU time (client and server
      // threads, user and kernel) against the raw AEAD's thread CPU time.
      const double per_iter = static_cast<double>(kBatchBytes / bytes * bytes);
      const double ch_cpu = ch->cpu_ns > 0 ? per_iter / ch->cpu_ns * 1e3 : 0;  // MB per CPU-s
      const double raw_cpu = raw->cpu_ns > 0 ? static_cast<double>(bytes) / raw->cpu_ns * 1e3 : 0;
      if (ch_cpu > 0 && raw_cpu > 0) {
        std::printf(
            "  %5zu B: per CPU-second: channel %8.1f MB | raw AEAD enc+dec %8.1f MB | "
            "ratio %.2f\n",
            bytes, ch_cpu, raw_cpu, ch_cpu / raw_cpu);
      }
    }
    const Figures* pair = get(std::string("BM_Paired_ChannelVsAead/") + size);
    if (pair && pair->counters.count("ratio")) {
      std::printf(
          "  %5zu B: paired: channel %8.1f MB/s | raw AEAD enc+dec %8.1f MB/s | ratio %.2f\n",
          bytes, pair->counters.at("channel_MB_per_s").value,
          pair->counters.at("aead_MB_per_s").value, pair->counters.at("ratio").value);
    }
    if (ses && raw && mbps(raw) > 0) {
      std::printf("  %5zu B: sans-IO session (no sockets) %8.1f MB/s | ratio to raw %.2f\n", bytes,
                  mbps(ses), mbps(ses) / mbps(raw));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (!rhizome::crypto::Init()) {
    std::fprintf(stderr, "crypto::Init failed\n");
    return 1;
  }
  (void)K();
  // Fails loudly before any timing if the setup cannot complete a handshake.
  (void)Handshake(ChannelKind::kClientToRelay);
  (void)Handshake(ChannelKind::kPeerLink);

  Register();
  return rhizome::bench::RunBenchmarksWithSummary(argc, argv, PrintSummary);
}
