// relay_load: a load generator for rhizome-relay (issue 4 §5). It prints
// figures; nothing here asserts on time (DESIGN §14). scripts/bench-relay.sh
// runs it beside mosquitto_load (the same shape against mosquitto) and
// docs/benchmarks.md records the figures.
//
// Three modes, each talking to a running relay given by its address, and
// reading the relay process's CPU time and memory from /proc/<--server-pid>:
//
// 1. Load (default). N connections (--connections). Each runs the NKpsk0
//    handshake (net::Channel), creates its own queue (NEW), sets its send key
//    (KEY, Ed25519-signed), subscribes (SUB, signed), all as
//    docs/protocol/relay-commands.md says. Connection i then SENDs 1 KiB-class
//    messages (a 1280-byte blob, the relay's size for that class; MAC under the
//    send key, bound to its own handshake hash) to the queue of connection
//    (i+1) mod N; every delivery pushed to a subscriber is ACKed at
//    once (a quiet ACK, as the client's messenger sends it: no reply on
//    success; --ack answered asks for the Ok). The blob carries the send
//    time (steady clock), the sender's index and a sequence number, so
//    latency is send -> push received, all in this process.
//    - maximal rate (--rate 0): each connection keeps --window messages sent
//      and not yet delivered, refilling on each delivery;
//    - fixed rate (--rate R msg/s in total): a 1 ms ticker issues the sends due
//      so far, round-robin over the connections (so each gets R/N per second),
//      each written as soon as it is made, as a client sending one message
//      would and as libmosquitto writes each publish (--tick-writes each, the
//      default), or all at the end of the tick (--tick-writes batch);
//      a send that would exceed --window undelivered messages on its
//      connection is skipped and counted.
//    Phases: set-up (not measured), --warmup seconds, then the measured window
//    (--duration seconds, or until --messages deliveries if given), then a
//    bounded drain. Reported for the window only: deliveries per second, the
//    relay's CPU (utime + stime from /proc/<pid>/stat) per delivered message,
//    p50/p99 latency of the deliveries in the window, and the relay's VmRSS
//    before set-up and at the end of the window. The load process's own CPU use
//    over the window is printed too: near 100% means the load client, not the
//    relay, limited the rate.
// 2. --idle N: N connections that finish the handshake and then either stop
//    (--idle-sub none) or also create, key and subscribe one queue
//    (--idle-sub one, the default: an idle client waiting for pushes). After
//    --idle-wait seconds: the relay's VmRSS delta divided by N.
// 3. --handshakes: NKpsk0 handshakes against the relay for --duration seconds,
//    --concurrency at a time, each on a new TCP connection that is closed
//    (with RST: no TIME_WAIT pile-up) as soon as the relay's reply arrives.
//    --handshake-client replay (default) replays first messages made before
//    the run (NKpsk0 message 1 is replayable by design; a responder keeps no
//    replay state, so each is a full responder handshake) and waits for
//    message 2, so the load process does no crypto and the relay is the
//    bottleneck; --handshake-client full runs real initiator handshakes
//    (net::Channel::Connect) instead. Reported: handshakes per second (wall),
//    the relay's CPU per handshake, and the crypto floor of a responder
//    handshake measured in this process (one X25519 key generation + two DH
//    with raw libsodium, thread CPU time), and their ratio:
//    (handshakes per relay CPU-second) / (floor operations per CPU-second).
//
// Output: readable lines, then one line "RESULT key=value ..." for scripts.
// Bounds: every phase has a deadline (--timeout caps the whole run), the
// number of connections and latency samples are capped, every network wait
// is bounded by the channel's deadlines or an explicit timer.
// Thread safety: one thread, one io_context.
#include <sodium.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/crypto/sign.h"
#include "rhizome/net/channel.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/relay_messages.h"
#include "rhizome/protocol/secure_session.h"
#include "rhizome/protocol/transport.h"

#include "load_util.h"

namespace {

using namespace rhizome::bench;

namespace rc = rhizome::crypto;
namespace rp = rhizome::protocol;
namespace rn = rhizome::net;
using rhizome::Bytes;
using rhizome::ByteSpan;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

// ---- Limits ------------------------------------------------------------------

constexpr std::size_t kMaxConnections = 19'000;      // below the fd hard limit here (20,000)
constexpr std::size_t kMaxLatencySamples = 5'000'000;  // 20 MB of uint32
// A message of the 1 KiB padding class travels as a relay blob of the size the
// relay requires for that class (1280 bytes: class + ratchet + per-path seal).
constexpr std::size_t kBlobBytes = rp::RelayBlobSizeFor(1024);
static_assert(kBlobBytes > 0);
constexpr std::size_t kBlobHeaderBytes = 8 + 4 + 8;    // send time ns, sender index, seq
constexpr std::size_t kHandshakePoolSize = 512;        // distinct replayed first messages
constexpr std::size_t kMaxHandshakeReplyBytes = 1024;  // NKpsk0 message 2 is 48 bytes + 2
constexpr auto kDrainTimeout = 10s;
constexpr auto kPollInterval = 10ms;
constexpr auto kTick = 1ms;
constexpr auto kLagProbeInterval = 5ms;
constexpr auto kHandshakeAttemptTimeout = 10s;

// ---- The relay process, from /proc ------------------------------------------

std::int64_t ThreadCpuNanos() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000ll + ts.tv_nsec;
}

// ---- Options -------------------------------------------------------------------

struct Options {
  std::string address_text;
  std::string address_file;
  int server_pid = 0;
  std::size_t connections = 100;
  double rate = 0;  // msg/s in total; 0 = maximal
  std::size_t window = 8;
  std::string ack = "quiet";  // quiet (as the client's messenger) or answered
  std::string tick_writes = "each";  // fixed rate: each send written at once, or the tick's batch
  double duration = 10;
  std::uint64_t messages = 0;
  double warmup = 2;
  std::size_t concurrency = 64;
  std::size_t idle = 0;
  std::string idle_sub = "one";
  double idle_wait = 3;
  bool handshakes = false;
  std::string handshake_client = "replay";
  double timeout = 180;
  std::string label;
};

// ---- Shared run state ------------------------------------------------------------

enum class Phase { kSetup, kWarmup, kMeasure, kDrain, kDone };

struct Conn {
  std::size_t index = 0;
  std::shared_ptr<rn::Channel> ch;
  Bytes h;  // handshake hash: authorizers on this connection bind to it
  std::optional<rc::Ed25519KeyPair> recipient;
  rp::Id recipient_id{};
  rp::Id sender_id{};
  std::optional<rc::SecretBytes> send_key;
  std::uint64_t corr_prefix = 0;
  std::uint64_t corr_next = 1;
  std::size_t outstanding = 0;  // sent, not yet delivered
  std::uint64_t seq = 0;
  bool ready = false;
  bool failed = false;
  bool closed = false;
};

struct Stats {
  std::uint64_t sent = 0;
  std::uint64_t send_refused = 0;  // TrySend refused (write queue full or closed)
  std::uint64_t skipped = 0;       // rate mode: window full
  std::uint64_t delivered_total = 0;
  std::uint64_t delivered_window = 0;
  std::uint64_t oks = 0;
  std::uint64_t acks_sent = 0;
  std::uint64_t bad_blobs = 0;
  std::map<std::uint32_t, std::uint64_t> errors;  // RelayErrorCode -> count
  std::vector<std::uint32_t> latency_us;
  std::uint64_t latency_dropped = 0;
  std::vector<std::uint32_t> loop_lag_us;  // lateness of a 5 ms probe timer in the window
  std::uint64_t handshakes_total = 0;
  std::uint64_t handshakes_window = 0;
  std::uint64_t handshake_failures = 0;
};

struct Run {
  explicit Run(asio::io_context& io_context) : io(io_context) {}
  asio::io_context& io;
  Options opt;
  bool quiet_acks = true;  // opt.ack == "quiet", decided once
  rp::RelayAddress address;
  rc::SecretBytes psk{rc::SecretBytes(32)};
  std::vector<std::unique_ptr<Conn>> conns;
  Phase phase = Phase::kSetup;
  bool sending = false;
  Stats stats;
  std::size_t setup_next = 0;
  std::size_t setup_done = 0;
  std::size_t setup_failed = 0;
  std::array<std::uint8_t, kBlobBytes> filler{};
  Clock::time_point deadline;
};

void Rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

asio::awaitable<void> Sleep(std::chrono::steady_clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(kTuple);
}

// A per-connection random prefix and a counter: never zero, never repeated on
// a connection (the relay refuses a repeated corr_id), one random draw per
// connection instead of one per command.
rp::Id NextCorr(Conn& c) {
  rp::Id id{};
  PutU64(id.data(), c.corr_prefix);
  PutU64(id.data() + 8, c.corr_next++);
  return id;
}

rp::SecureSessionConfig InitiatorConfig(const Run& run) {
  rp::SecureSessionConfig cfg;
  cfg.kind = rp::ChannelKind::kClientToRelay;
  cfg.role = rc::NoiseRole::kInitiator;
  cfg.remote_static = run.address.noise_key;
  cfg.psk = &run.psk;
  cfg.peer_versions = run.address.versions;
  return cfg;
}

// `now`: written before returning, unless a write is pending (corked around
// the send: net::Channel::Cork/Uncork); otherwise at the end of the turn,
// sharing a write with the connection's other frames. A channel corked by the
// caller stays corked.
bool SendCommand(Conn& c, rp::RelayCommandBody body, rp::Id corr, bool now = false) {
  auto bytes = rp::SerializeTransportMessage(rp::RelayCommand{corr, std::move(body)});
  if (!bytes) return false;
  if (!now || c.ch->corked()) return c.ch->TrySend(*bytes).ok();
  c.ch->Cork();
  const bool sent = c.ch->TrySend(*bytes).ok();
  c.ch->Uncork();
  return sent;
}

// Sends one command and waits for the reply carrying its corr_id (set-up only:
// before SUB nothing is pushed). Bounded by the channel's deadlines.
asio::awaitable<std::optional<rp::RelayReply>> Call(Conn& c, rp::Id corr, rp::RelayCommandBody body) {
  auto bytes = rp::SerializeTransportMessage(rp::RelayCommand{corr, std::move(body)});
  if (!bytes) co_return std::nullopt;
  if (!co_await c.ch->Send(*bytes)) co_return std::nullopt;
  for (int i = 0; i < 4; ++i) {
    auto frame = co_await c.ch->Receive();
    if (!frame) co_return std::nullopt;
    auto msg = rp::ParseTransportMessage(*frame);
    if (!msg) co_return std::nullopt;
    auto* reply = std::get_if<rp::RelayReply>(&*msg);
    if (reply && reply->corr_id && *reply->corr_id == corr) co_return std::move(*reply);
  }
  co_return std::nullopt;
}

rp::Signature SignAuth(const Conn& c, const rp::Id& corr, ByteSpan entity, rp::RelayCommandCode code) {
  rp::Signature sig{};
  auto msg = rp::RelayAuthMessage(c.h, corr, entity, code);
  if (msg) {
    auto s = rc::Ed25519Sign(c.recipient->secret_key, *msg);
    if (s) sig = *s;
  }
  return sig;
}

// Connects; with `queue`, also NEW + KEY + SUB. Sets c.ready or c.failed.
asio::awaitable<void> SetUp(Run& run, Conn& c, bool queue) {
  auto connected = co_await rn::Channel::Connect(run.address.host, run.address.port,
                                                 InitiatorConfig(run), rc::SystemRandom());
  if (!connected) {
    c.failed = true;
    co_return;
  }
  c.ch = std::move(*connected);
  auto h = c.ch->session().handshake_hash();
  c.h.assign(h.begin(), h.end());
  std::array<std::uint8_t, 8> prefix{};
  rc::SystemRandom().Fill(prefix);
  c.corr_prefix = GetU64(prefix.data());
  if (!queue) {
    c.ready = true;
    co_return;
  }
  c.recipient = rc::Ed25519Generate(rc::SystemRandom());
  {
    auto r = co_await Call(c, NextCorr(c), rp::NewQueue{c.recipient->public_key});
    auto* created = r ? std::get_if<rp::QueueCreated>(&r->body) : nullptr;
    if (!created) {
      c.failed = true;
      co_return;
    }
    c.recipient_id = created->recipient_id;
    c.sender_id = created->sender_id;
  }
  c.send_key = rc::SecretBytes::Random(rc::SystemRandom(), 32);
  {
    rp::Id corr = NextCorr(c);
    rp::SetQueueKey key;
    key.recipient_id = c.recipient_id;
    key.send_key = c.send_key->Clone();
    key.signature = SignAuth(c, corr, c.recipient_id, rp::RelayCommandCode::kKey);
    auto r = co_await Call(c, corr, std::move(key));
    if (!r || !std::holds_alternative<rp::RelayOk>(r->body)) {
      c.failed = true;
      co_return;
    }
  }
  {
    rp::Id corr = NextCorr(c);
    rp::Subscribe sub;
    sub.recipient_id = c.recipient_id;
    sub.signature = SignAuth(c, corr, c.recipient_id, rp::RelayCommandCode::kSub);
    auto r = co_await Call(c, corr, std::move(sub));
    if (!r || !std::holds_alternative<rp::RelayOk>(r->body)) {
      c.failed = true;
      co_return;
    }
  }
  c.ready = true;
}

// Takes connections to set up from the shared counter, one at a time.
asio::awaitable<void> SetUpWorker(Run& run, bool queue) {
  while (run.setup_next < run.conns.size() && Clock::now() < run.deadline) {
    Conn& c = *run.conns[run.setup_next++];
    co_await SetUp(run, c, queue);
    ++run.setup_done;
    if (c.failed) ++run.setup_failed;
  }
}

asio::awaitable<bool> WaitUntil(Run& run, const std::function<bool()>& done,
                                Clock::time_point until) {
  while (!done()) {
    if (Clock::now() >= until || Clock::now() >= run.deadline) co_return false;
    co_await Sleep(kPollInterval);
  }
  co_return true;
}

asio::awaitable<bool> SetUpAll(Run& run, std::size_t n, bool queue) {
  for (std::size_t i = 0; i < n; ++i) {
    auto c = std::make_unique<Conn>();
    c->index = i;
    run.conns.push_back(std::move(c));
  }
  const auto start = Clock::now();
  const std::size_t workers = std::min(run.opt.concurrency, n);
  for (std::size_t w = 0; w < workers; ++w) asio::co_spawn(run.io, SetUpWorker(run, queue), Rethrow);
  bool finished = co_await WaitUntil(run, [&] { return run.setup_done == n; }, run.deadline);
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("set-up: %zu of %zu connections ready in %.1f s (%zu failed)%s\n",
              n - run.setup_failed - (n - run.setup_done), n, secs, run.setup_failed,
              finished ? "" : " [timed out]");
  co_return finished && run.setup_failed == 0;
}

// ---- Load --------------------------------------------------------------------

bool SendOne(Run& run, Conn& from, bool now) {
  Conn& to = *run.conns[(from.index + 1) % run.conns.size()];
  const rp::Id corr = NextCorr(from);
  rp::SendMessage send;
  send.sender_id = to.sender_id;
  auto auth = rp::RelayAuthMessage(from.h, corr, to.sender_id, rp::RelayCommandCode::kSend);
  if (!auth || !rc::Blake2bKeyed(to.send_key->expose(), *auth, send.mac)) return false;
  send.blob.assign(run.filler.begin(), run.filler.end());
  const auto now_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
  PutU64(send.blob.data(), now_ns);
  const auto idx = static_cast<std::uint32_t>(from.index);
  std::memcpy(send.blob.data() + 8, &idx, 4);
  PutU64(send.blob.data() + 12, from.seq++);
  if (!SendCommand(from, std::move(send), corr, now)) {
    ++run.stats.send_refused;
    return false;
  }
  ++from.outstanding;
  ++run.stats.sent;
  return true;
}

void Refill(Run& run, Conn& c) {
  while (run.sending && !c.closed && c.outstanding < run.opt.window) {
    if (!SendOne(run, c, /*now=*/false)) break;
  }
}

void OnDelivery(Run& run, Conn& c, rp::QueueMessage& m) {
  const auto now = Clock::now();
  // ACK at once: it frees the relay's delivery window for this queue. Quiet
  // by default, as the client's messenger sends it (no reply on success).
  SendCommand(c, rp::AckMessage{m.recipient_id, m.message_id, run.quiet_acks}, NextCorr(c));
  ++run.stats.acks_sent;
  ++run.stats.delivered_total;
  if (m.blob.size() < kBlobHeaderBytes) {
    ++run.stats.bad_blobs;
    return;
  }
  const std::uint64_t sent_ns = GetU64(m.blob.data());
  std::uint32_t from_index = 0;
  std::memcpy(&from_index, m.blob.data() + 8, 4);
  const auto now_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count());
  if (run.phase == Phase::kMeasure) {
    ++run.stats.delivered_window;
    RecordLatency(run.stats.latency_us, run.stats.latency_dropped, kMaxLatencySamples, sent_ns,
                  now_ns);
  }
  if (from_index >= run.conns.size()) {
    ++run.stats.bad_blobs;
    return;
  }
  Conn& sender = *run.conns[from_index];
  if (sender.outstanding > 0) --sender.outstanding;
  if (run.opt.rate == 0) Refill(run, sender);
}

asio::awaitable<void> ReceiveLoop(Run& run, Conn& c) {
  auto ch = c.ch;  // keeps the channel alive while we wait on it
  for (;;) {
    auto frame = co_await ch->Receive();
    if (!frame) break;
    auto msg = rp::ParseTransportMessage(*frame);
    if (!msg) break;
    auto* reply = std::get_if<rp::RelayReply>(&*msg);
    if (!reply) continue;
    if (auto* m = std::get_if<rp::QueueMessage>(&reply->body)) {
      OnDelivery(run, c, *m);
    } else if (std::holds_alternative<rp::RelayOk>(reply->body)) {
      ++run.stats.oks;
    } else if (auto* e = std::get_if<rp::RelayError>(&reply->body)) {
      ++run.stats.errors[static_cast<std::uint32_t>(e->code)];
    }
  }
  c.closed = true;
}

// Fixed rate: every tick, issue the sends due since the start, round-robin.
// --tick-writes each: each written at once, so the latency of the first does
// not include the sealing of the rest of the tick's sends, which no client
// sending its own message has (libmosquitto writes each publish inside
// mosquitto_publish, so mosquitto_load does the same); batch: corked, all
// written when the tick has issued them. Until 2026-11-29 they were posted,
// written after every handler already queued (docs/benchmarks.md).
asio::awaitable<void> Ticker(Run& run) {
  asio::steady_timer timer(run.io);
  const auto start = Clock::now();
  auto next = start;
  std::uint64_t issued = 0;
  std::size_t rr = 0;
  const std::size_t n = run.conns.size();
  const bool each = run.opt.tick_writes == "each";
  std::vector<std::shared_ptr<rn::Channel>> corked;
  while (run.sending) {
    next += kTick;
    timer.expires_at(next);
    co_await timer.async_wait(kTuple);
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const auto due = static_cast<std::uint64_t>(elapsed * run.opt.rate);
    while (run.sending && issued < due) {
      Conn& c = *run.conns[rr];
      rr = (rr + 1) % n;
      ++issued;
      if (c.closed || c.outstanding >= run.opt.window) {
        ++run.stats.skipped;
        continue;
      }
      if (!each && !c.ch->corked()) {
        c.ch->Cork();
        corked.push_back(c.ch);
      }
      SendOne(run, c, /*now=*/each);
    }
    for (auto& ch : corked) ch->Uncork();
    corked.clear();
  }
}

// How late this process's event loop runs a timer: if the load client itself
// is starved or saturated, its latencies include that lateness.
asio::awaitable<void> LagProbe(Run& run) {
  asio::steady_timer timer(run.io);
  while (run.phase != Phase::kDone && Clock::now() < run.deadline) {
    const auto due = Clock::now() + kLagProbeInterval;
    timer.expires_at(due);
    co_await timer.async_wait(kTuple);
    if (run.phase == Phase::kMeasure && run.stats.loop_lag_us.size() < kMaxLatencySamples) {
      run.stats.loop_lag_us.push_back(static_cast<std::uint32_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - due).count()));
    }
  }
}

struct Window {
  double seconds = 0;
  std::int64_t server_cpu_us = 0;
  std::int64_t self_cpu_us = 0;
};

asio::awaitable<Window> MeasureWindow(Run& run, const std::function<bool()>& enough) {
  Window w;
  const auto t0 = Clock::now();
  const auto cpu0 = ProcessCpuMicros(run.opt.server_pid);
  const auto self0 = SelfCpuMicros();
  run.phase = Phase::kMeasure;
  const auto until = t0 + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(run.opt.duration));
  co_await WaitUntil(run, enough, until);
  run.phase = Phase::kDrain;
  const auto cpu1 = ProcessCpuMicros(run.opt.server_pid);
  w.self_cpu_us = SelfCpuMicros() - self0;
  w.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  w.server_cpu_us = (cpu0 < 0 || cpu1 < 0) ? -1 : cpu1 - cpu0;
  co_return w;
}

void CloseAll(Run& run) {
  for (auto& c : run.conns) {
    if (c->ch) c->ch->Close();
  }
}

std::string ErrorSummary(const Stats& s) {
  std::string out;
  std::uint64_t total = 0;
  for (auto& [code, n] : s.errors) {
    out += (out.empty() ? "" : ",") + std::to_string(code) + ":" + std::to_string(n);
    total += n;
  }
  return out.empty() ? "0" : std::to_string(total) + "(" + out + ")";
}

asio::awaitable<int> RunLoad(Run& run) {
  const auto rss_before = ProcessRssKib(run.opt.server_pid);
  if (!co_await SetUpAll(run, run.opt.connections, /*queue=*/true)) co_return 1;
  for (auto& c : run.conns) asio::co_spawn(run.io, ReceiveLoop(run, *c), Rethrow);

  run.phase = Phase::kWarmup;
  run.sending = true;
  asio::co_spawn(run.io, LagProbe(run), Rethrow);
  if (run.opt.rate == 0) {
    for (auto& c : run.conns) Refill(run, *c);
  } else {
    asio::co_spawn(run.io, Ticker(run), Rethrow);
  }
  co_await Sleep(std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(run.opt.warmup)));

  const std::uint64_t want = run.opt.messages;
  Window w = co_await MeasureWindow(
      run, [&] { return want > 0 && run.stats.delivered_window >= want; });
  const auto rss_after = ProcessRssKib(run.opt.server_pid);

  // Drain: stop sending, let what is in flight arrive (bounded).
  run.sending = false;
  const auto outstanding = [&] {
    std::size_t n = 0;
    for (auto& c : run.conns) n += c->closed ? 0 : c->outstanding;
    return n;
  };
  const bool drained = co_await WaitUntil(run, [&] { return outstanding() == 0; },
                                          Clock::now() + kDrainTimeout);
  std::size_t closed = 0;
  for (auto& c : run.conns) closed += c->closed ? 1 : 0;
  CloseAll(run);
  run.phase = Phase::kDone;

  auto& s = run.stats;
  const double rate = static_cast<double>(s.delivered_window) / w.seconds;
  const double cpu_per_msg = (w.server_cpu_us < 0 || s.delivered_window == 0)
                                 ? -1
                                 : static_cast<double>(w.server_cpu_us) /
                                       static_cast<double>(s.delivered_window);
  const double p50 = Percentile(s.latency_us, 0.50);
  const double p99 = Percentile(s.latency_us, 0.99);
  const double lag99 = Percentile(s.loop_lag_us, 0.99);
  const double server_util = w.server_cpu_us < 0 ? -1 : w.server_cpu_us / (w.seconds * 1e4);
  const double self_util = w.self_cpu_us / (w.seconds * 1e4);
  std::printf("window: %.2f s, %" PRIu64 " delivered (%.0f msg/s)\n", w.seconds,
              s.delivered_window, rate);
  std::printf("relay CPU: %.2f us per delivered message (%.0f%% of one core); load client CPU: %.0f%%\n",
              cpu_per_msg, server_util, self_util);
  std::printf("latency send->deliver: p50 %.0f us, p99 %.0f us (%zu samples); load client's "
              "timer lateness p99 %.0f us\n",
              p50, p99, s.latency_us.size(), lag99);
  std::printf("relay RSS: %" PRId64 " KiB before, %" PRId64 " KiB after the window\n", rss_before,
              rss_after);
  std::printf("sent %" PRIu64 ", delivered %" PRIu64 ", oks %" PRIu64 ", errors %s, refused %" PRIu64
              ", skipped %" PRIu64 ", closed %zu, %s\n",
              s.sent, s.delivered_total, s.oks, ErrorSummary(s).c_str(), s.send_refused, s.skipped,
              closed, drained ? "drained" : "NOT drained");
  std::printf(
      "RESULT tool=relay_load mode=load label=%s conns=%zu rate_target=%.0f window=%zu ack=%s "
      "tick_writes=%s "
      "seconds=%.2f delivered=%" PRIu64 " msg_per_s=%.0f cpu_us_per_msg=%.2f server_cpu_pct=%.0f "
      "load_cpu_pct=%.0f p50_us=%.0f p99_us=%.0f load_lag_p99_us=%.0f rss_before_kib=%" PRId64 " rss_after_kib=%" PRId64
      " errors=%s skipped=%" PRIu64 " refused=%" PRIu64 " closed=%zu drained=%d\n",
      run.opt.label.c_str(), run.conns.size(), run.opt.rate, run.opt.window, run.opt.ack.c_str(),
      run.opt.tick_writes.c_str(), w.seconds,
      s.delivered_window, rate, cpu_per_msg, server_util, self_util, p50, p99, lag99, rss_before,
      rss_after, ErrorSummary(s).c_str(), s.skipped, s.send_refused, closed, drained ? 1 : 0);
  co_return (closed == 0 && s.errors.empty()) ? 0 : 1;
}

// ---- Idle ----------------------------------------------------------------------

asio::awaitable<int> RunIdle(Run& run) {
  const bool queue = run.opt.idle_sub == "one";
  const auto rss_before = ProcessRssKib(run.opt.server_pid);
  const bool all = co_await SetUpAll(run, run.opt.idle, queue);
  for (auto& c : run.conns) {
    if (c->ready) asio::co_spawn(run.io, ReceiveLoop(run, *c), Rethrow);
  }
  co_await Sleep(std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(run.opt.idle_wait)));
  const auto rss_after = ProcessRssKib(run.opt.server_pid);
  std::size_t open = 0;
  for (auto& c : run.conns) open += (c->ready && !c->closed) ? 1 : 0;
  const double per_conn =
      open == 0 ? -1 : static_cast<double>(rss_after - rss_before) * 1024.0 / static_cast<double>(open);
  std::printf("idle: %zu of %zu connections open (%s), relay RSS %" PRId64 " -> %" PRId64
              " KiB: %.0f bytes per connection\n",
              open, run.opt.idle, queue ? "handshake + NEW/KEY/SUB each" : "handshake only",
              rss_before, rss_after, per_conn);
  std::printf("RESULT tool=relay_load mode=idle label=%s conns=%zu open=%zu sub=%s rss_before_kib=%" PRId64
              " rss_after_kib=%" PRId64 " bytes_per_conn=%.0f\n",
              run.opt.label.c_str(), run.opt.idle, open, run.opt.idle_sub.c_str(), rss_before,
              rss_after, per_conn);
  CloseAll(run);
  co_return (all && open == run.opt.idle) ? 0 : 1;
}

// ---- Handshakes ----------------------------------------------------------------

// The crypto floor of an NKpsk0 responder: one X25519 key generation and two
// DH (es, ee), raw libsodium, thread CPU time. Median of batches.
double FloorMicros(int batches, int per_batch) {
  std::uint8_t sk[32], pk[32], out[32], peer1[32], peer2[32];
  randombytes_buf(sk, sizeof sk);
  crypto_scalarmult_base(peer1, sk);
  randombytes_buf(sk, sizeof sk);
  crypto_scalarmult_base(peer2, sk);
  std::vector<double> per_op;
  int failures = 0;
  for (int b = 0; b < batches; ++b) {
    const auto t0 = ThreadCpuNanos();
    for (int i = 0; i < per_batch; ++i) {
      randombytes_buf(sk, sizeof sk);
      crypto_scalarmult_base(pk, sk);
      if (crypto_scalarmult(out, sk, peer1) != 0) ++failures;
      if (crypto_scalarmult(out, sk, peer2) != 0) ++failures;
    }
    per_op.push_back(static_cast<double>(ThreadCpuNanos() - t0) / 1000.0 / per_batch);
  }
  sodium_memzero(sk, sizeof sk);
  if (failures) std::printf("floor: %d DH failures (unexpected)\n", failures);
  std::sort(per_op.begin(), per_op.end());
  return per_op[per_op.size() / 2];
}

asio::awaitable<void> ReplayWorker(Run& run, const std::vector<Bytes>& pool, std::size_t start,
                                   asio::ip::tcp::endpoint endpoint) {
  using namespace asio::experimental::awaitable_operators;
  std::size_t next = start;
  auto ex = co_await asio::this_coro::executor;
  while (run.sending && Clock::now() < run.deadline) {
    const Bytes& first = pool[next++ % pool.size()];
    asio::ip::tcp::socket socket(ex);
    asio::steady_timer timer(ex, kHandshakeAttemptTimeout);
    bool ok = false;
    auto connected = co_await (socket.async_connect(endpoint, kTuple) || timer.async_wait(kTuple));
    if (connected.index() == 0 && !std::get<0>(std::get<0>(connected))) {
      asio::error_code ec;
      socket.set_option(asio::ip::tcp::no_delay(true), ec);
      auto written = co_await (asio::async_write(socket, asio::buffer(first), kTuple) ||
                               timer.async_wait(kTuple));
      std::array<std::uint8_t, 2> len{};
      if (written.index() == 0 && !std::get<0>(std::get<0>(written))) {
        auto got = co_await (asio::async_read(socket, asio::buffer(len), kTuple) ||
                             timer.async_wait(kTuple));
        const std::size_t n = (std::size_t{len[0]} << 8) | len[1];
        if (got.index() == 0 && !std::get<0>(std::get<0>(got)) && n > 0 &&
            n <= kMaxHandshakeReplyBytes) {
          std::array<std::uint8_t, kMaxHandshakeReplyBytes> body{};
          auto rest = co_await (asio::async_read(socket, asio::buffer(body.data(), n), kTuple) ||
                                timer.async_wait(kTuple));
          ok = rest.index() == 0 && !std::get<0>(std::get<0>(rest));
        }
      }
      // RST instead of FIN: no TIME_WAIT left behind on either side.
      socket.set_option(asio::socket_base::linger(true, 0), ec);
    }
    asio::error_code ignored;
    socket.close(ignored);
    if (ok) {
      ++run.stats.handshakes_total;
      if (run.phase == Phase::kMeasure) ++run.stats.handshakes_window;
    } else {
      ++run.stats.handshake_failures;
    }
  }
}

asio::awaitable<void> FullWorker(Run& run) {
  while (run.sending && Clock::now() < run.deadline) {
    auto ch = co_await rn::Channel::Connect(run.address.host, run.address.port, InitiatorConfig(run),
                                            rc::SystemRandom());
    if (ch) {
      (*ch)->Close();
      ++run.stats.handshakes_total;
      if (run.phase == Phase::kMeasure) ++run.stats.handshakes_window;
    } else {
      ++run.stats.handshake_failures;
    }
  }
}

asio::awaitable<int> RunHandshakes(Run& run) {
  const double floor_before = FloorMicros(5, 400);
  std::vector<Bytes> pool;
  if (run.opt.handshake_client == "replay") {
    for (std::size_t i = 0; i < kHandshakePoolSize; ++i) {
      auto session = rp::SecureSession::Create(InitiatorConfig(run), rc::SystemRandom());
      Bytes first;
      if (!session || !session->Start(first)) {
        std::fprintf(stderr, "relay_load: cannot make a first handshake message\n");
        co_return 1;
      }
      pool.push_back(std::move(first));
    }
  }
  asio::error_code ec;
  auto ip = asio::ip::make_address(run.address.host, ec);
  if (ec) {
    std::fprintf(stderr, "relay_load: --handshakes needs a numeric relay host\n");
    co_return 1;
  }
  const asio::ip::tcp::endpoint endpoint(ip, run.address.port);
  run.sending = true;
  run.phase = Phase::kWarmup;
  for (std::size_t w = 0; w < run.opt.concurrency; ++w) {
    if (run.opt.handshake_client == "replay") {
      asio::co_spawn(run.io, ReplayWorker(run, pool, w * 37, endpoint), Rethrow);
    } else {
      asio::co_spawn(run.io, FullWorker(run), Rethrow);
    }
  }
  co_await Sleep(std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(run.opt.warmup)));
  Window w = co_await MeasureWindow(run, [] { return false; });
  run.sending = false;
  co_await Sleep(200ms);  // workers finish their current attempt (each bounded)
  const double floor_after = FloorMicros(5, 400);
  const double floor_us = std::min(floor_before, floor_after);

  auto& s = run.stats;
  const double per_s = static_cast<double>(s.handshakes_window) / w.seconds;
  const double cpu_per_hs = (w.server_cpu_us < 0 || s.handshakes_window == 0)
                                ? -1
                                : static_cast<double>(w.server_cpu_us) /
                                      static_cast<double>(s.handshakes_window);
  const double server_util = w.server_cpu_us < 0 ? -1 : w.server_cpu_us / (w.seconds * 1e4);
  const double self_util = w.self_cpu_us / (w.seconds * 1e4);
  const double cpu_rate = cpu_per_hs > 0 ? 1e6 / cpu_per_hs : 0;
  const double floor_rate = 1e6 / floor_us;
  std::printf("handshakes (%s client): %.0f/s wall over %.2f s; relay CPU %.1f us each (%.0f%% of one "
              "core) = %.0f per relay CPU-second; load client CPU %.0f%%; %" PRIu64 " failed\n",
              run.opt.handshake_client.c_str(), per_s, w.seconds, cpu_per_hs, server_util, cpu_rate,
              self_util, s.handshake_failures);
  std::printf("crypto floor (1 X25519 keygen + 2 DH, libsodium): %.1f us (before %.1f, after %.1f) = "
              "%.0f/s; ratio %.2f\n",
              floor_us, floor_before, floor_after, floor_rate, cpu_rate / floor_rate);
  std::printf("RESULT tool=relay_load mode=handshakes label=%s client=%s concurrency=%zu seconds=%.2f "
              "hs=%" PRIu64 " hs_per_s=%.0f cpu_us_per_hs=%.2f server_cpu_pct=%.0f load_cpu_pct=%.0f "
              "hs_per_cpu_s=%.0f floor_us=%.2f floor_per_s=%.0f ratio=%.3f failures=%" PRIu64 "\n",
              run.opt.label.c_str(), run.opt.handshake_client.c_str(), run.opt.concurrency, w.seconds,
              s.handshakes_window, per_s, cpu_per_hs, server_util, self_util, cpu_rate, floor_us,
              floor_rate, cpu_rate / floor_rate, s.handshake_failures);
  co_return s.handshakes_window > 0 ? 0 : 1;
}

// ---- main ----------------------------------------------------------------------

asio::awaitable<void> Main(Run& run, int& exit_code) {
  if (run.opt.handshakes) {
    exit_code = co_await RunHandshakes(run);
  } else if (run.opt.idle > 0) {
    exit_code = co_await RunIdle(run);
  } else {
    exit_code = co_await RunLoad(run);
  }
  run.sending = false;
  run.io.stop();
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"relay_load: load generator for rhizome-relay (issue 4 §5); prints figures"};
  app.add_option("--address", opt.address_text, "Relay address (rhizome-relay://...)");
  app.add_option("--address-file", opt.address_file, "File holding the relay address (first line)");
  app.add_option("--server-pid", opt.server_pid, "The relay's process id (CPU and RSS from /proc)")
      ->required();
  app.add_option("--connections", opt.connections, "Load: number of connections (default 100)");
  app.add_option("--rate", opt.rate, "Load: total msg/s, spread evenly; 0 = maximal (default)");
  app.add_option("--window", opt.window,
                 "Load: most messages per connection sent and not yet delivered (default 8)");
  app.add_option("--ack", opt.ack,
                 "Load: 'quiet' ACKs (no reply on success; the client's kind, default) or "
                 "'answered' (an Ok each)")
      ->check(CLI::IsMember({"quiet", "answered"}));
  app.add_option("--tick-writes", opt.tick_writes,
                 "Fixed rate: 'each' send written at once (default) or the tick's 'batch' at its end")
      ->check(CLI::IsMember({"each", "batch"}));
  app.add_option("--duration", opt.duration, "Seconds measured (default 10)");
  app.add_option("--messages", opt.messages, "Load: end the window after this many deliveries");
  app.add_option("--warmup", opt.warmup, "Seconds of load before the window (default 2)");
  app.add_option("--concurrency", opt.concurrency,
                 "Connections set up at once; handshakes in flight (default 64)");
  app.add_option("--idle", opt.idle, "Idle mode: open this many connections and measure RSS");
  app.add_option("--idle-sub", opt.idle_sub, "Idle mode: 'one' (NEW+KEY+SUB each, default) or 'none'")
      ->check(CLI::IsMember({"one", "none"}));
  app.add_option("--idle-wait", opt.idle_wait, "Idle mode: seconds to wait before measuring (default 3)");
  app.add_flag("--handshakes", opt.handshakes, "Handshake mode");
  app.add_option("--handshake-client", opt.handshake_client,
                 "Handshake mode: 'replay' (default) or 'full'")
      ->check(CLI::IsMember({"replay", "full"}));
  app.add_option("--timeout", opt.timeout, "Hard cap on the whole run, seconds (default 180)");
  app.add_option("--label", opt.label, "Free text copied into the RESULT line");
  CLI11_PARSE(app, argc, argv);

  if (opt.connections == 0 || opt.connections > kMaxConnections || opt.idle > kMaxConnections) {
    std::fprintf(stderr, "relay_load: connections must be 1..%zu\n", kMaxConnections);
    return 2;
  }
  if (opt.window == 0 || opt.concurrency == 0 || opt.duration <= 0 || opt.rate < 0) {
    std::fprintf(stderr, "relay_load: --window, --concurrency and --duration must be positive\n");
    return 2;
  }
  if (opt.label.find(' ') != std::string::npos) {
    std::fprintf(stderr, "relay_load: --label must not contain spaces\n");
    return 2;
  }
  if (opt.address_text.empty() && !opt.address_file.empty()) {
    std::ifstream in(opt.address_file);
    std::getline(in, opt.address_text);
  }
  if (auto st = rc::Init(); !st) {
    std::fprintf(stderr, "relay_load: %s\n", st.error().message);
    return 1;
  }
  auto address = rp::ParseRelayAddress(opt.address_text);
  if (!address) {
    std::fprintf(stderr, "relay_load: bad relay address: %s\n", address.error().message);
    return 2;
  }
  if (ProcessCpuMicros(opt.server_pid) < 0) {
    std::fprintf(stderr, "relay_load: cannot read /proc/%d/stat\n", opt.server_pid);
    return 2;
  }
  RaiseFdLimit("relay_load");

  asio::io_context io(1);
  Run run(io);
  run.opt = opt;
  run.quiet_acks = opt.ack == "quiet";
  run.address = std::move(*address);
  if (run.address.psk.size() == 32) run.psk = run.address.psk.Clone();
  rc::SystemRandom().Fill(run.filler);
  run.deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(opt.timeout));
  int exit_code = 1;
  asio::co_spawn(io, Main(run, exit_code), Rethrow);
  // The hard cap: stop the loop whatever state it is in.
  asio::steady_timer cap(io, run.deadline + 5s);
  bool timed_out = false;
  cap.async_wait([&](const asio::error_code& ec) {
    if (ec) return;
    timed_out = true;
    io.stop();
  });
  io.run();
  if (timed_out) {
    std::fprintf(stderr, "relay_load: --timeout reached\n");
    return 1;
  }
  return exit_code;
}
