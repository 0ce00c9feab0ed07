// mosquitto_load: the load shape of relay_load.cc, against mosquitto (issue 4
// §5), so scripts/bench-relay.sh can print the two side by side. It prints
// figures; nothing here asserts on time (DESIGN §14).
//
// Load (default): N libmosquitto clients (MQTT 3.1.1, clean_session = false,
// TCP_NODELAY), client i subscribed with QoS 1 to its own topic and publishing
// 1280-byte payloads (a 1 KiB-class message as relay_load sends it) with QoS 1
// to the topic of client (i+1) mod N. The broker
// answers each publish with PUBACK once it has it (our SEND -> OK); libmosquitto
// answers each delivered QoS 1 message with PUBACK (our ACK). The payload
// carries the send time, the sender's index and a sequence number, as in
// relay_load. Maximal rate (--rate 0: --window messages per client sent and
// not yet delivered) or a fixed total rate (1 ms ticks, round-robin). Each
// publish is written at once, inside mosquitto_publish (a client that is not
// threaded, outside a callback: `strace -k -e trace=write` shows the write
// under mosquitto_publish_v5), as relay_load --tick-writes each does.
// --warmup, then the measured window (--duration or --messages), then a
// bounded drain. Reported, for the window only: deliveries per second,
// mosquitto's CPU (utime + stime, /proc/<--server-pid>/stat) per delivered
// message, p50/p99 send -> deliver latency, mosquitto's VmRSS before set-up
// and at the end of the window, and this process's CPU use.
// All clients run in this one thread on one epoll loop (mosquitto_loop_read /
// mosquitto_loop_write / mosquitto_loop_misc on the clients' sockets).
//
// --idle N: N connections that send CONNECT (and with --idle-sub one, the
// default, one QoS 1 SUBSCRIBE to their own topic) and then stay silent, the
// same as relay_load --idle; reported: mosquitto's VmRSS delta / N. This mode
// writes the two MQTT 3.1.1 packets itself (spec §3.1, §3.8) on plain sockets:
// libmosquitto holds a socket pair per client besides its connection (3 fds),
// and 10,000 of them would pass the fd hard limit of this machine (20,000).
//
// There is no handshake mode: mosquitto's listener here is plain TCP (no TLS),
// so there is no comparable handshake; relay_load --handshakes compares ours
// with the crypto floor instead.
//
// Output: readable lines, then one line "RESULT key=value ..." for scripts.
// Bounds: every phase has a deadline (--timeout caps the whole run); counts
// and latency samples are capped; every socket read has a timeout.
#include <arpa/inet.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "load_util.h"

namespace {

using namespace rhizome::bench;

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t kMaxConnections = 19'000;
constexpr std::size_t kMaxLatencySamples = 5'000'000;
// The bytes relay_load sends per message: a 1 KiB-class message as the relay
// stores it (protocol::RelayBlobSizeFor(1024)), so both servers carry the same
// payload (what a Rhizome client would publish through either).
constexpr std::size_t kBlobBytes = 1280;
constexpr std::size_t kBlobHeaderBytes = 8 + 4 + 8;
constexpr int kKeepAliveSeconds = 60;
constexpr int kIdleKeepAliveSeconds = 600;  // idle clients send nothing for the whole wait
constexpr int kQos = 1;
constexpr auto kDrainTimeout = 10s;
constexpr auto kTick = 1ms;
constexpr auto kLagProbeInterval = 5ms;  // as relay_load; the loop wakes at least every 1 ms
constexpr auto kMiscInterval = 1s;
constexpr int kIdleReadTimeoutSeconds = 10;
constexpr std::size_t kMaxEvents = 512;

// ---- The server process, from /proc (as in relay_load.cc) ------------------------

std::uint64_t NowNanos() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
}

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// ---- Options and state ---------------------------------------------------------

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  int server_pid = 0;
  std::size_t connections = 100;
  double rate = 0;
  std::size_t window = 8;
  double duration = 10;
  std::uint64_t messages = 0;
  double warmup = 2;
  std::size_t concurrency = 64;
  std::size_t idle = 0;
  std::string idle_sub = "one";
  double idle_wait = 3;
  double timeout = 180;
  std::string label;
};

enum class Phase { kSetup, kWarmup, kMeasure, kDrain, kDone };

struct MConn {
  std::size_t index = 0;
  mosquitto* m = nullptr;
  int fd = -1;
  std::string topic;  // its own (subscribed) topic
  bool connack = false;
  bool connected = false;
  bool subscribed = false;
  bool failed = false;
  bool dead = false;
  bool epollout = false;
  bool dirty = false;
  std::size_t outstanding = 0;
  std::uint64_t seq = 0;
};

struct Stats {
  std::uint64_t sent = 0;
  std::uint64_t publish_failed = 0;
  std::uint64_t skipped = 0;
  std::uint64_t delivered_total = 0;
  std::uint64_t delivered_window = 0;
  std::uint64_t pubacks = 0;
  std::uint64_t bad_payloads = 0;
  std::vector<std::uint32_t> latency_us;
  std::uint64_t latency_dropped = 0;
  std::vector<std::uint32_t> loop_lag_us;  // lateness of a 5 ms probe in the window
};

struct Run {
  Options opt;
  std::vector<std::unique_ptr<MConn>> conns;
  int epfd = -1;
  Phase phase = Phase::kSetup;
  bool sending = false;
  Stats stats;
  std::vector<MConn*> dirty;
  std::array<std::uint8_t, kBlobBytes> filler{};
  Clock::time_point deadline;
  Clock::time_point next_misc;
};

Run* g_run = nullptr;  // libmosquitto callbacks reach the run through it

void MarkDirty(MConn& c) {
  if (!c.dirty) {
    c.dirty = true;
    g_run->dirty.push_back(&c);
  }
}

void MarkDead(MConn& c) {
  if (c.dead) return;
  c.dead = true;
  if (c.fd >= 0) epoll_ctl(g_run->epfd, EPOLL_CTL_DEL, c.fd, nullptr);
}

bool PublishOne(Run& run, MConn& from) {
  MConn& to = *run.conns[(from.index + 1) % run.conns.size()];
  std::array<std::uint8_t, kBlobBytes> payload = run.filler;
  PutU64(payload.data(), NowNanos());
  const auto idx = static_cast<std::uint32_t>(from.index);
  std::memcpy(payload.data() + 8, &idx, 4);
  PutU64(payload.data() + 12, from.seq++);
  const int rc = mosquitto_publish(from.m, nullptr, to.topic.c_str(), static_cast<int>(kBlobBytes),
                                   payload.data(), kQos, false);
  if (rc != MOSQ_ERR_SUCCESS) {
    ++run.stats.publish_failed;
    return false;
  }
  ++from.outstanding;
  ++run.stats.sent;
  MarkDirty(from);
  return true;
}

void Refill(Run& run, MConn& c) {
  while (run.sending && !c.dead && c.outstanding < run.opt.window) {
    if (!PublishOne(run, c)) break;
  }
}

// ---- libmosquitto callbacks --------------------------------------------------------

void OnConnect(mosquitto*, void* obj, int rc) {
  auto& c = *static_cast<MConn*>(obj);
  c.connack = true;
  c.connected = rc == 0;
  if (rc != 0) c.failed = true;
}

void OnSubscribe(mosquitto*, void* obj, int, int count, const int* granted) {
  auto& c = *static_cast<MConn*>(obj);
  if (count >= 1 && granted[0] == kQos) {
    c.subscribed = true;
  } else {
    c.failed = true;
  }
}

void OnPublish(mosquitto*, void*, int) { ++g_run->stats.pubacks; }

void OnDisconnect(mosquitto*, void* obj, int) { MarkDead(*static_cast<MConn*>(obj)); }

void OnMessage(mosquitto*, void* obj, const mosquitto_message* msg) {
  Run& run = *g_run;
  auto& c = *static_cast<MConn*>(obj);
  MarkDirty(c);  // libmosquitto queued a PUBACK
  ++run.stats.delivered_total;
  if (msg->payloadlen < static_cast<int>(kBlobHeaderBytes)) {
    ++run.stats.bad_payloads;
    return;
  }
  const auto* p = static_cast<const std::uint8_t*>(msg->payload);
  const std::uint64_t sent_ns = GetU64(p);
  std::uint32_t from_index = 0;
  std::memcpy(&from_index, p + 8, 4);
  const std::uint64_t now_ns = NowNanos();
  if (run.phase == Phase::kMeasure) {
    ++run.stats.delivered_window;
    RecordLatency(run.stats.latency_us, run.stats.latency_dropped, kMaxLatencySamples, sent_ns,
                  now_ns);
  }
  if (from_index >= run.conns.size()) {
    ++run.stats.bad_payloads;
    return;
  }
  MConn& sender = *run.conns[from_index];
  if (sender.outstanding > 0) --sender.outstanding;
  if (run.opt.rate == 0) Refill(run, sender);
}

// ---- The event loop ------------------------------------------------------------------

void FlushDirty(Run& run) {
  // Writing may queue nothing new, but callbacks during reads can: loop over a copy.
  std::vector<MConn*> list;
  list.swap(run.dirty);
  for (MConn* c : list) {
    c->dirty = false;
    if (c->dead) continue;
    if (mosquitto_want_write(c->m)) {
      if (mosquitto_loop_write(c->m, 1) != MOSQ_ERR_SUCCESS) {
        MarkDead(*c);
        continue;
      }
    }
    const bool want = mosquitto_want_write(c->m);
    if (want != c->epollout) {
      epoll_event ev{};
      ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
      ev.data.ptr = c;
      epoll_ctl(run.epfd, EPOLL_CTL_MOD, c->fd, &ev);
      c->epollout = want;
    }
  }
}

// Waits at most `timeout` (nanosecond precision: epoll_pwait2), then handles
// what is ready.
void Pump(Run& run, std::chrono::nanoseconds timeout) {
  std::array<epoll_event, kMaxEvents> events{};
  timeout = std::max(timeout, std::chrono::nanoseconds(0));
  const timespec ts{static_cast<time_t>(timeout.count() / 1'000'000'000),
                    static_cast<long>(timeout.count() % 1'000'000'000)};
  const int n = epoll_pwait2(run.epfd, events.data(), static_cast<int>(events.size()), &ts, nullptr);
  for (int i = 0; i < n; ++i) {
    auto& c = *static_cast<MConn*>(events[static_cast<std::size_t>(i)].data.ptr);
    if (c.dead) continue;
    const auto ev = events[static_cast<std::size_t>(i)].events;
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
      if (mosquitto_loop_read(c.m, 1) != MOSQ_ERR_SUCCESS) {
        MarkDead(c);
        continue;
      }
    }
    if ((ev & EPOLLOUT) || mosquitto_want_write(c.m)) MarkDirty(c);
  }
  FlushDirty(run);
  if (Clock::now() >= run.next_misc) {
    run.next_misc = Clock::now() + kMiscInterval;
    for (auto& c : run.conns) {
      if (c->m && !c->dead) mosquitto_loop_misc(c->m);
    }
  }
}

bool PumpUntil(Run& run, const std::function<bool()>& done, Clock::time_point until) {
  while (!done()) {
    if (Clock::now() >= until || Clock::now() >= run.deadline) return false;
    Pump(run, 5ms);
  }
  return true;
}

bool SetUpAll(Run& run) {
  const std::size_t n = run.opt.connections;
  const auto start = Clock::now();
  const std::string prefix = "rzl-" + std::to_string(getpid()) + "-";
  std::size_t awaiting = 0;  // CONNECT sent, no CONNACK yet
  for (std::size_t i = 0; i < n; ++i) {
    auto c = std::make_unique<MConn>();
    c->index = i;
    c->topic = "rz/" + std::to_string(i);
    run.conns.push_back(std::move(c));
  }
  for (auto& cp : run.conns) {
    MConn& c = *cp;
    // Keep the broker's accept backlog short.
    PumpUntil(
        run,
        [&] {
          awaiting = 0;
          for (auto& o : run.conns) awaiting += (o->m && !o->connack && !o->dead) ? 1 : 0;
          return awaiting < run.opt.concurrency;
        },
        run.deadline);
    const std::string id = prefix + std::to_string(c.index);
    c.m = mosquitto_new(id.c_str(), /*clean_session=*/false, &c);
    if (!c.m) return false;
    mosquitto_int_option(c.m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_callback_set(c.m, OnConnect);
    mosquitto_subscribe_callback_set(c.m, OnSubscribe);
    mosquitto_publish_callback_set(c.m, OnPublish);
    mosquitto_message_callback_set(c.m, OnMessage);
    mosquitto_disconnect_callback_set(c.m, OnDisconnect);
    if (mosquitto_connect(c.m, run.opt.host.c_str(), run.opt.port, kKeepAliveSeconds) !=
        MOSQ_ERR_SUCCESS) {
      c.failed = true;
      c.dead = true;
      continue;
    }
    c.fd = mosquitto_socket(c.m);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &c;
    epoll_ctl(run.epfd, EPOLL_CTL_ADD, c.fd, &ev);
    MarkDirty(c);
  }
  bool ok = PumpUntil(
      run,
      [&] {
        for (auto& c : run.conns) {
          if (!c->connack && !c->dead) return false;
        }
        return true;
      },
      run.deadline);
  for (auto& c : run.conns) {
    if (c->connected && !c->dead) {
      mosquitto_subscribe(c->m, nullptr, c->topic.c_str(), kQos);
      MarkDirty(*c);
    }
  }
  ok = ok && PumpUntil(
                 run,
                 [&] {
                   for (auto& c : run.conns) {
                     if (!c->subscribed && !c->failed && !c->dead) return false;
                   }
                   return true;
                 },
                 run.deadline);
  std::size_t ready = 0;
  for (auto& c : run.conns) ready += (c->subscribed && !c->dead) ? 1 : 0;
  std::printf("set-up: %zu of %zu clients connected and subscribed in %.1f s\n", ready, n,
              std::chrono::duration<double>(Clock::now() - start).count());
  return ok && ready == n;
}

int RunLoad(Run& run) {
  const auto rss_before = ProcessRssKib(run.opt.server_pid);
  if (!SetUpAll(run)) return 1;

  run.phase = Phase::kWarmup;
  run.sending = true;
  const auto rate_start = Clock::now();
  auto next_tick = rate_start;
  std::uint64_t issued = 0;
  std::size_t rr = 0;
  const std::size_t n = run.conns.size();
  if (run.opt.rate == 0) {
    for (auto& c : run.conns) Refill(run, *c);
  }
  auto probe_due = Clock::now() + kLagProbeInterval;
  // One loop for every phase; the rate ticker and the lag probe run inside it.
  auto step = [&] {
    if (Clock::now() >= probe_due) {
      if (run.phase == Phase::kMeasure && run.stats.loop_lag_us.size() < kMaxLatencySamples) {
        run.stats.loop_lag_us.push_back(static_cast<std::uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - probe_due).count()));
      }
      probe_due = Clock::now() + kLagProbeInterval;
    }
    if (run.opt.rate > 0 && run.sending && Clock::now() >= next_tick) {
      next_tick += kTick;
      const double elapsed = std::chrono::duration<double>(Clock::now() - rate_start).count();
      const auto due = static_cast<std::uint64_t>(elapsed * run.opt.rate);
      while (issued < due) {
        MConn& c = *run.conns[rr];
        rr = (rr + 1) % n;
        ++issued;
        if (c.dead || c.outstanding >= run.opt.window) {
          ++run.stats.skipped;
          continue;
        }
        PublishOne(run, c);
      }
      FlushDirty(run);
    }
    // Sleep until the next tick, as relay_load's timer does. (Until 2026-11-29
    // this waited whole milliseconds, rounded down: 0 for most of every tick,
    // so the loop spun at 100% CPU and never slept through a delivery, which
    // relay_load does.)
    const auto wait = std::min<Clock::duration>(next_tick - Clock::now(), 1ms);
    Pump(run, run.opt.rate > 0 ? std::chrono::duration_cast<std::chrono::nanoseconds>(wait)
                               : std::chrono::nanoseconds(1ms));
  };
  const auto warm_until = Clock::now() + Seconds(run.opt.warmup);
  while (Clock::now() < warm_until && Clock::now() < run.deadline) step();

  const auto t0 = Clock::now();
  const auto cpu0 = ProcessCpuMicros(run.opt.server_pid);
  const auto self0 = SelfCpuMicros();
  run.phase = Phase::kMeasure;
  const auto until = t0 + Seconds(run.opt.duration);
  while (Clock::now() < until && Clock::now() < run.deadline) {
    if (run.opt.messages > 0 && run.stats.delivered_window >= run.opt.messages) break;
    step();
  }
  run.phase = Phase::kDrain;
  const auto cpu1 = ProcessCpuMicros(run.opt.server_pid);
  const auto self_cpu = SelfCpuMicros() - self0;
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto rss_after = ProcessRssKib(run.opt.server_pid);
  const std::int64_t server_cpu = (cpu0 < 0 || cpu1 < 0) ? -1 : cpu1 - cpu0;

  run.sending = false;
  const bool drained = PumpUntil(
      run,
      [&] {
        std::size_t left = 0;
        for (auto& c : run.conns) left += c->dead ? 0 : c->outstanding;
        return left == 0;
      },
      Clock::now() + kDrainTimeout);
  std::size_t dead = 0;
  for (auto& c : run.conns) dead += c->dead ? 1 : 0;
  for (auto& c : run.conns) {
    if (c->m && !c->dead) mosquitto_disconnect(c->m);
  }
  FlushDirty(run);
  run.phase = Phase::kDone;

  auto& s = run.stats;
  const double rate = static_cast<double>(s.delivered_window) / seconds;
  const double cpu_per_msg = (server_cpu < 0 || s.delivered_window == 0)
                                 ? -1
                                 : static_cast<double>(server_cpu) /
                                       static_cast<double>(s.delivered_window);
  const double p50 = Percentile(s.latency_us, 0.50);
  const double p99 = Percentile(s.latency_us, 0.99);
  const double lag99 = Percentile(s.loop_lag_us, 0.99);
  const double server_util = server_cpu < 0 ? -1 : server_cpu / (seconds * 1e4);
  const double self_util = self_cpu / (seconds * 1e4);
  std::printf("window: %.2f s, %" PRIu64 " delivered (%.0f msg/s)\n", seconds, s.delivered_window,
              rate);
  std::printf("mosquitto CPU: %.2f us per delivered message (%.0f%% of one core); load client CPU: "
              "%.0f%%\n",
              cpu_per_msg, server_util, self_util);
  std::printf("latency send->deliver: p50 %.0f us, p99 %.0f us (%zu samples); load client's "
              "loop lateness p99 %.0f us\n",
              p50, p99, s.latency_us.size(), lag99);
  std::printf("mosquitto RSS: %" PRId64 " KiB before, %" PRId64 " KiB after the window\n",
              rss_before, rss_after);
  std::printf("sent %" PRIu64 ", delivered %" PRIu64 ", pubacks %" PRIu64 ", publish failures %" PRIu64
              ", skipped %" PRIu64 ", dead %zu, %s\n",
              s.sent, s.delivered_total, s.pubacks, s.publish_failed, s.skipped, dead,
              drained ? "drained" : "NOT drained");
  std::printf(
      "RESULT tool=mosquitto_load mode=load label=%s conns=%zu rate_target=%.0f window=%zu "
      "seconds=%.2f delivered=%" PRIu64 " msg_per_s=%.0f cpu_us_per_msg=%.2f server_cpu_pct=%.0f "
      "load_cpu_pct=%.0f p50_us=%.0f p99_us=%.0f load_lag_p99_us=%.0f rss_before_kib=%" PRId64 " rss_after_kib=%" PRId64
      " errors=%" PRIu64 " skipped=%" PRIu64 " refused=0 closed=%zu drained=%d\n",
      run.opt.label.c_str(), n, run.opt.rate, run.opt.window, seconds, s.delivered_window, rate,
      cpu_per_msg, server_util, self_util, p50, p99, lag99, rss_before, rss_after, s.publish_failed,
      s.skipped, dead, drained ? 1 : 0);
  return (dead == 0 && s.publish_failed == 0) ? 0 : 1;
}

// ---- Idle: hand-written MQTT 3.1.1 CONNECT and SUBSCRIBE ---------------------------

void PutStr(std::vector<std::uint8_t>& out, const std::string& s) {
  out.push_back(static_cast<std::uint8_t>(s.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}

// Fixed header with a one-byte remaining length (every packet here is < 128 bytes).
std::vector<std::uint8_t> Packet(std::uint8_t type_flags, const std::vector<std::uint8_t>& body) {
  std::vector<std::uint8_t> p(2 + body.size());
  p[0] = type_flags;
  p[1] = static_cast<std::uint8_t>(body.size());
  std::copy(body.begin(), body.end(), p.begin() + 2);
  return p;
}

std::vector<std::uint8_t> ConnectPacket(const std::string& client_id, int keepalive) {
  std::vector<std::uint8_t> b;
  PutStr(b, "MQTT");
  b.push_back(4);     // protocol level 3.1.1
  b.push_back(0x00);  // flags: clean_session = 0, as in the load mode
  b.push_back(static_cast<std::uint8_t>(keepalive >> 8));
  b.push_back(static_cast<std::uint8_t>(keepalive));
  PutStr(b, client_id);
  return Packet(0x10, b);
}

std::vector<std::uint8_t> SubscribePacket(std::uint16_t packet_id, const std::string& topic) {
  std::vector<std::uint8_t> b;
  b.push_back(static_cast<std::uint8_t>(packet_id >> 8));
  b.push_back(static_cast<std::uint8_t>(packet_id));
  PutStr(b, topic);
  b.push_back(kQos);
  return Packet(0x82, b);
}

bool WriteAll(int fd, const std::vector<std::uint8_t>& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool ReadExactly(int fd, std::uint8_t* out, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = recv(fd, out + done, size - done, 0);  // SO_RCVTIMEO bounds it
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

int OpenIdle(const Options& opt, std::size_t i, bool subscribe, const std::string& prefix) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval tv{kIdleReadTimeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(opt.port));
  if (inet_pton(AF_INET, opt.host.c_str(), &addr.sin_addr) != 1 ||
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  auto bytes = ConnectPacket(prefix + std::to_string(i), kIdleKeepAliveSeconds);
  if (subscribe) {
    auto sub = SubscribePacket(1, "rz/" + std::to_string(i));
    bytes.insert(bytes.end(), sub.begin(), sub.end());
  }
  return WriteAll(fd, bytes) ? fd : (close(fd), -1);
}

// CONNACK = 20 02 00 00 (session present may be set); SUBACK = 90 03 00 01 01.
bool ReadIdleReplies(int fd, bool subscribe) {
  std::array<std::uint8_t, 4> connack{};
  if (!ReadExactly(fd, connack.data(), connack.size())) return false;
  if (connack[0] != 0x20 || connack[1] != 2 || connack[3] != 0) return false;
  if (!subscribe) return true;
  std::array<std::uint8_t, 5> suback{};
  if (!ReadExactly(fd, suback.data(), suback.size())) return false;
  return suback[0] == 0x90 && suback[1] == 3 && suback[4] == kQos;
}

int RunIdle(Run& run) {
  const bool subscribe = run.opt.idle_sub == "one";
  const auto rss_before = ProcessRssKib(run.opt.server_pid);
  const std::string prefix = "rzi-" + std::to_string(getpid()) + "-";
  std::vector<int> fds;
  std::size_t failed = 0;
  const auto start = Clock::now();
  // Batches of --concurrency: connect and write, then read the replies.
  for (std::size_t base = 0; base < run.opt.idle && Clock::now() < run.deadline;
       base += run.opt.concurrency) {
    std::vector<int> batch;
    for (std::size_t i = base; i < std::min(run.opt.idle, base + run.opt.concurrency); ++i) {
      const int fd = OpenIdle(run.opt, i, subscribe, prefix);
      if (fd < 0) {
        ++failed;
      } else {
        batch.push_back(fd);
      }
    }
    for (int fd : batch) {
      if (ReadIdleReplies(fd, subscribe)) {
        fds.push_back(fd);
      } else {
        ++failed;
        close(fd);
      }
    }
  }
  std::printf("set-up: %zu of %zu idle connections in %.1f s (%zu failed)\n", fds.size(),
              run.opt.idle, std::chrono::duration<double>(Clock::now() - start).count(), failed);
  const auto wait_until = Clock::now() + Seconds(run.opt.idle_wait);
  while (Clock::now() < wait_until) usleep(10'000);
  const auto rss_after = ProcessRssKib(run.opt.server_pid);
  // Still open? A closed connection reads as EOF (readable with nothing).
  std::size_t open = 0;
  for (int fd : fds) {
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, 0);
    if (r == 0) ++open;
  }
  const double per_conn = open == 0 ? -1
                                    : static_cast<double>(rss_after - rss_before) * 1024.0 /
                                          static_cast<double>(open);
  std::printf("idle: %zu of %zu connections open (%s), mosquitto RSS %" PRId64 " -> %" PRId64
              " KiB: %.0f bytes per connection\n",
              open, run.opt.idle, subscribe ? "CONNECT + one QoS 1 SUBSCRIBE each" : "CONNECT only",
              rss_before, rss_after, per_conn);
  std::printf("RESULT tool=mosquitto_load mode=idle label=%s conns=%zu open=%zu sub=%s "
              "rss_before_kib=%" PRId64 " rss_after_kib=%" PRId64 " bytes_per_conn=%.0f\n",
              run.opt.label.c_str(), run.opt.idle, open, run.opt.idle_sub.c_str(), rss_before,
              rss_after, per_conn);
  for (int fd : fds) close(fd);
  return open == run.opt.idle ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"mosquitto_load: relay_load's load shape against mosquitto (QoS 1); prints figures"};
  app.add_option("--host", opt.host, "Broker IPv4 address (default 127.0.0.1)");
  app.add_option("--port", opt.port, "Broker port")->required();
  app.add_option("--server-pid", opt.server_pid, "mosquitto's process id (CPU and RSS from /proc)")
      ->required();
  app.add_option("--connections", opt.connections, "Load: number of clients (default 100)");
  app.add_option("--rate", opt.rate, "Load: total msg/s, spread evenly; 0 = maximal (default)");
  app.add_option("--window", opt.window,
                 "Load: most messages per client sent and not yet delivered (default 8)");
  app.add_option("--duration", opt.duration, "Seconds measured (default 10)");
  app.add_option("--messages", opt.messages, "Load: end the window after this many deliveries");
  app.add_option("--warmup", opt.warmup, "Seconds of load before the window (default 2)");
  app.add_option("--concurrency", opt.concurrency, "Connections set up at once (default 64)");
  app.add_option("--idle", opt.idle, "Idle mode: open this many connections and measure RSS");
  app.add_option("--idle-sub", opt.idle_sub, "Idle mode: 'one' (one SUBSCRIBE each, default) or 'none'")
      ->check(CLI::IsMember({"one", "none"}));
  app.add_option("--idle-wait", opt.idle_wait, "Idle mode: seconds to wait before measuring (default 3)");
  app.add_option("--timeout", opt.timeout, "Hard cap on the whole run, seconds (default 180)");
  app.add_option("--label", opt.label, "Free text copied into the RESULT line");
  CLI11_PARSE(app, argc, argv);

  if (opt.connections == 0 || opt.connections > kMaxConnections || opt.idle > kMaxConnections) {
    std::fprintf(stderr, "mosquitto_load: connections must be 1..%zu\n", kMaxConnections);
    return 2;
  }
  if (opt.window == 0 || opt.concurrency == 0 || opt.duration <= 0 || opt.rate < 0 ||
      opt.port <= 0 || opt.port > 65535) {
    std::fprintf(stderr, "mosquitto_load: bad --window, --concurrency, --duration, --rate or --port\n");
    return 2;
  }
  if (opt.label.find(' ') != std::string::npos) {
    std::fprintf(stderr, "mosquitto_load: --label must not contain spaces\n");
    return 2;
  }
  if (ProcessCpuMicros(opt.server_pid) < 0) {
    std::fprintf(stderr, "mosquitto_load: cannot read /proc/%d/stat\n", opt.server_pid);
    return 2;
  }
  RaiseFdLimit("mosquitto_load");

  Run run;
  g_run = &run;
  run.opt = opt;
  run.deadline = Clock::now() + Seconds(opt.timeout);
  run.next_misc = Clock::now() + kMiscInterval;
  std::random_device rd;  // filler only (not a key): the payload is public bench data
  for (auto& b : run.filler) b = static_cast<std::uint8_t>(rd());

  int code = 1;
  if (opt.idle > 0) {
    code = RunIdle(run);
  } else {
    mosquitto_lib_init();
    run.epfd = epoll_create1(EPOLL_CLOEXEC);
    code = RunLoad(run);
    for (auto& c : run.conns) {
      if (c->m) mosquitto_destroy(c->m);
    }
    close(run.epfd);
    mosquitto_lib_cleanup();
  }
  if (Clock::now() >= run.deadline) {
    std::fprintf(stderr, "mosquitto_load: --timeout reached\n");
    return 1;
  }
  return code;
}
