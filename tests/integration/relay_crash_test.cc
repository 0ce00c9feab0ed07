// rhizome-relay killed with SIGKILL at random moments under load (issue 4 §2,
// "Done when": the crash test). The real binary runs on 127.0.0.1 with a
// temporary data directory; four queues each have a sender and a recipient
// (the synchronous test client, one thread each) while the test kills the
// relay 8-15 times, restarting it on the same data directory and port after
// each kill. Clients reconnect and resume: senders resend whatever was not
// acknowledged, recipients subscribe again.
//
// What must hold (docs/protocol/relay-commands.md, docs/relay-internals.md,
// "Durability" and "Delivery to subscribers"):
// - every SEND the relay acknowledged is delivered to its recipient at least
//   once over the whole run;
// - no message id is delivered again after the relay acknowledged the
//   recipient's ACK for it (ACK deletes durably);
// - a redelivered message keeps its message id and its bytes, and within one
//   subscription messages arrive in the order they were stored;
// - nothing is corrupted: every delivered blob is exactly a blob some sender
//   sent to that queue.
// Unacknowledged SENDs may be lost or delivered (even twice, when the relay
// committed a SEND but died before its Ok and the sender resent it).
//
// The kill schedule comes from a seeded PRNG whose seed is printed; set
// RHIZOME_CRASH_SEED to replay a schedule (the interleaving with the clients
// still depends on timing). Every loop is bounded in count and time.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "child_process.h"
#include "relay_client.h"
#include "relay_process.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/sign.h"
#include "test_support.h"

namespace rhizome::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace protocol;
using Clock = std::chrono::steady_clock;

constexpr int kQueues = 4;
// 1 KiB of content in the relay blob size that holds it (the relay accepts
// only the fixed sizes of kRelayBlobSizes).
constexpr std::size_t kContentBytes = 1024;
constexpr std::size_t kBlobBytes = RelayBlobSizeFor(kContentBytes);
static_assert(kBlobBytes != 0 && IsRelayBlobSize(kBlobBytes));
constexpr int kMinKills = 8;
constexpr int kMaxKills = 15;
constexpr int kMaxKillDelayMs = 300;
// A sender stops after this many acknowledged messages even if kills remain.
constexpr std::uint64_t kMaxMessagesPerQueue = 3000;
// Before the first kill: this many acknowledged SENDs in all (or the deadline).
constexpr std::size_t kWarmUpSends = 20;
constexpr auto kWarmUpDeadline = 15s;
// Everything (kills, load, drain) must be over by then; workers give up after it.
constexpr auto kHardDeadline = 150s;
// After the last restart and the senders' stop: every acknowledged SEND delivered by then.
constexpr auto kDrainDeadline = 40s;
constexpr auto kRelayStartDeadline = 15s;
constexpr auto kCallDeadline = 5s;
constexpr auto kPushWait = 200ms;
constexpr auto kReconnectPause = 10ms;
constexpr std::size_t kMaxFailuresKept = 40;
constexpr int kPortAttempts = 20;

// ---- the relay process -------------------------------------------------------


// A port below the kernel's ephemeral range, so no client socket (whose local
// port comes from that range) can hold it while the relay is down, and a
// client connecting during the downtime cannot connect to itself. 0 (any
// port) if the range leaves no room below it.
std::uint16_t CandidatePort(std::mt19937_64& prng) {
  unsigned low = 32768, high = 60999;
  if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); range) range >> low >> high;
  if (low <= 12000) return 0;
  std::uniform_int_distribution<unsigned> pick(low - 10000, low - 1);
  return static_cast<std::uint16_t>(pick(prng));
}

// ---- messages --------------------------------------------------------------------

using Queue = RelayQueue;  // a queue and the keys of its recipient and sender

std::string BlobHeader(std::uint64_t seed, int queue) {
  return "rhizome-crash-test seed=" + std::to_string(seed) + " queue=" + std::to_string(queue) +
         " number=";
}

// Message `number` of `queue`: a header naming it (the unique marker), then
// filler that depends on seed, queue and number, so any corruption, truncation
// or mix-up between messages or queues shows.
Bytes BlobFor(std::uint64_t seed, int queue, std::uint64_t number) {
  const std::string header = BlobHeader(seed, queue) + std::to_string(number) + "\n";
  Bytes blob(kBlobBytes);
  std::copy(header.begin(), header.end(), blob.begin());
  std::mt19937_64 filler(seed ^ (0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(queue + 1)) ^
                         (0xc2b2ae3d27d4eb4full * (number + 1)));
  for (std::size_t i = header.size(); i < blob.size(); ++i) {
    blob[i] = static_cast<std::uint8_t>(filler());
  }
  return blob;
}

// The number a blob of `queue` carries, if it is byte for byte BlobFor(seed, queue, number).
std::optional<std::uint64_t> NumberOf(std::uint64_t seed, int queue, const Bytes& blob) {
  if (blob.size() != kBlobBytes) return std::nullopt;
  const std::string header = BlobHeader(seed, queue);
  std::string_view text(reinterpret_cast<const char*>(blob.data()), blob.size());
  if (text.substr(0, header.size()) != header) return std::nullopt;
  text.remove_prefix(header.size());
  std::uint64_t number = 0;
  const char* const text_end = text.data() + text.size();
  auto [end, ec] = std::from_chars(text.data(), text_end, number);
  if (ec != std::errc() || end == text.data() || end == text_end || *end != '\n') {
    return std::nullopt;
  }
  if (BlobFor(seed, queue, number) != blob) return std::nullopt;
  return number;
}

// ---- what the clients saw, shared by the worker threads -----------------------------

struct QueueRecord {
  std::set<std::uint64_t> acked_sends;            // numbers whose SEND the relay acknowledged
  std::uint64_t numbers_tried = 0;                // the sender has sent numbers < this
  std::map<std::uint64_t, std::uint32_t> delivered;  // number -> times delivered
  std::map<Id, std::uint64_t> number_of_id;       // message id -> the number it carried
  std::set<Id> confirmed_acks;                    // ids whose ACK the relay acknowledged
  std::uint64_t send_attempts = 0;
  std::uint64_t deliveries = 0;
  std::uint64_t sender_connects = 0;
  std::uint64_t recipient_connects = 0;
};

struct Shared {
  std::mutex mu;
  std::array<QueueRecord, kQueues> queues;
  std::vector<std::string> failures;
  std::size_t failures_dropped = 0;
  std::atomic<bool> stop_senders{false};
  std::atomic<bool> stop_recipients{false};
  Clock::time_point hard_deadline;

  void Fail(std::string what) {
    std::lock_guard lock(mu);
    FailLocked(std::move(what));
  }
  void FailLocked(std::string what) {
    if (failures.size() < kMaxFailuresKept) {
      failures.push_back(std::move(what));
    } else {
      ++failures_dropped;
    }
  }
  bool TimeLeft() const { return Clock::now() < hard_deadline; }
};

// ---- the clients ----------------------------------------------------------------------

// Sends 0, 1, 2, ... to queue `qi`, one at a time, each until the relay
// acknowledges it; after a lost connection it reconnects and resends the
// message that was not acknowledged.
void RunSender(Shared& shared, const RelayAddress& address, const Queue& q, int qi,
               std::uint64_t seed) {
  std::uint64_t next = 0;
  for (int round = 0; round < 100'000 && !shared.stop_senders && shared.TimeLeft() &&
                      next < kMaxMessagesPerQueue;
       ++round) {
    RelayClient c(address);
    if (!c.ok()) {
      std::this_thread::sleep_for(kReconnectPause);
      continue;
    }
    {
      std::lock_guard lock(shared.mu);
      ++shared.queues[qi].sender_connects;
    }
    while (!shared.stop_senders && next < kMaxMessagesPerQueue && shared.TimeLeft()) {
      {
        std::lock_guard lock(shared.mu);
        QueueRecord& r = shared.queues[qi];
        r.numbers_tried = std::max(r.numbers_tried, next + 1);
        ++r.send_attempts;
      }
      const Bytes blob = BlobFor(seed, qi, next);
      auto reply = SendTo(c, q, blob);
      if (!reply) break;  // the relay died (or the reply is late): reconnect, resend `next`
      if (std::holds_alternative<RelayOk>(reply->body)) {
        std::lock_guard lock(shared.mu);
        shared.queues[qi].acked_sends.insert(next);
        ++next;
        continue;
      }
      const auto* error = std::get_if<RelayError>(&reply->body);
      shared.Fail("queue " + std::to_string(qi) + ": SEND " + std::to_string(next) +
                  " refused with code " +
                  std::to_string(error ? static_cast<unsigned>(error->code) : 0u));
      return;
    }
  }
}

// Checks one delivery on queue `qi` and records it. `last_number` is the
// number of the previous delivery of the same subscription.
void RecordDelivery(Shared& shared, const Queue& q, int qi, std::uint64_t seed,
                    const QueueMessage& m, std::optional<std::uint64_t>& last_number) {
  const std::string where = "queue " + std::to_string(qi) + ": ";
  auto number = NumberOf(seed, qi, m.blob);
  std::lock_guard lock(shared.mu);
  QueueRecord& r = shared.queues[qi];
  ++r.deliveries;
  if (m.recipient_id != q.recipient_id) {
    shared.FailLocked(where + "a delivery names another queue");
  }
  if (r.confirmed_acks.count(m.message_id) != 0) {
    shared.FailLocked(where + "message id " + ToHex(m.message_id) +
                      " delivered again after its ACK was acknowledged");
  }
  if (!number) {
    shared.FailLocked(where + "corrupted blob (" + std::to_string(m.blob.size()) +
                      " bytes) under message id " + ToHex(m.message_id));
    return;
  }
  if (*number >= r.numbers_tried) {
    shared.FailLocked(where + "message " + std::to_string(*number) + " delivered before it was sent");
  }
  auto [it, fresh] = r.number_of_id.emplace(m.message_id, *number);
  if (!fresh && it->second != *number) {
    shared.FailLocked(where + "message id " + ToHex(m.message_id) + " carried message " +
                      std::to_string(it->second) + ", now " + std::to_string(*number));
  }
  if (last_number && *number < *last_number) {
    shared.FailLocked(where + "message " + std::to_string(*number) + " pushed after " +
                      std::to_string(*last_number) + " in one subscription");
  }
  last_number = *number;
  ++r.delivered[*number];
}

// Subscribes to queue `qi`, checks and acknowledges every delivery; after a
// lost connection it reconnects and subscribes again.
void RunRecipient(Shared& shared, const RelayAddress& address, const Queue& q, int qi,
                  std::uint64_t seed) {
  for (int round = 0; round < 100'000 && !shared.stop_recipients && shared.TimeLeft(); ++round) {
    RelayClient c(address);
    if (!c.ok()) {
      std::this_thread::sleep_for(kReconnectPause);
      continue;
    }
    auto sub = SubscribeTo(c, q);
    if (!sub) continue;  // the relay died: reconnect
    if (!std::holds_alternative<RelayOk>(sub->body)) {
      shared.Fail("queue " + std::to_string(qi) + ": SUB refused");
      return;
    }
    {
      std::lock_guard lock(shared.mu);
      ++shared.queues[qi].recipient_connects;
    }
    std::optional<std::uint64_t> last_number;  // per subscription
    for (int step = 0; step < 1'000'000 && !shared.stop_recipients && shared.TimeLeft(); ++step) {
      auto push = c.NextPush(kPushWait);
      if (!push) {
        // Idle, or the connection is gone: an ACK of an id this connection
        // never received changes nothing and is answered (AUTH) while the
        // connection lives.
        if (!c.Call(AckMessage{q.recipient_id, RelayClient::NewCorrId()}, kCallDeadline)) break;
        continue;
      }
      const auto* m = std::get_if<QueueMessage>(&push->body);
      if (m == nullptr) {
        shared.Fail("queue " + std::to_string(qi) + ": unexpected push");
        continue;
      }
      RecordDelivery(shared, q, qi, seed, *m, last_number);
      auto ack = c.Call(AckMessage{q.recipient_id, m->message_id}, kCallDeadline);
      if (!ack) break;  // unconfirmed: the message may come back, which is fine
      if (!std::holds_alternative<RelayOk>(ack->body)) {
        shared.Fail("queue " + std::to_string(qi) + ": ACK of a delivered message refused");
        continue;
      }
      std::lock_guard lock(shared.mu);
      shared.queues[qi].confirmed_acks.insert(m->message_id);
    }
  }
}

// Acknowledged SENDs of queue `qi` never delivered (at most `limit` listed).
std::vector<std::uint64_t> Undelivered(const QueueRecord& r, std::size_t limit) {
  std::vector<std::uint64_t> missing;
  for (std::uint64_t n : r.acked_sends) {
    if (r.delivered.count(n) == 0) {
      missing.push_back(n);
      if (missing.size() >= limit) break;
    }
  }
  return missing;
}

class RelayCrashTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(crypto::Init()); }
  fs::path data() const { return dir_.path() / "relay-data"; }
  fs::path log() const { return dir_.path() / "relay.log"; }
  std::string LogTail() const {
    std::string text = fs::exists(log()) ? ReadFileOrDie(log()) : std::string();
    return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
  }

  TempDir dir_;
};

// Stops the workers and joins them when the test leaves early.
struct Workers {
  Shared& shared;
  std::vector<std::thread> senders, recipients;
  void StopSenders() {
    shared.stop_senders = true;
    for (auto& t : senders) {
      if (t.joinable()) t.join();
    }
  }
  void StopRecipients() {
    shared.stop_recipients = true;
    for (auto& t : recipients) {
      if (t.joinable()) t.join();
    }
  }
  ~Workers() {
    StopSenders();
    StopRecipients();
  }
};

TEST_F(RelayCrashTest, AcknowledgedMessagesSurviveRandomKill9UnderLoad) {
  std::uint64_t seed = std::random_device{}();
  seed = (seed << 32) ^ std::random_device{}();
  if (const char* env = std::getenv("RHIZOME_CRASH_SEED")) seed = std::strtoull(env, nullptr, 10);
  std::cout << "[ crash    ] seed " << seed << " (RHIZOME_CRASH_SEED=" << seed << " replays it)"
            << std::endl;
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 prng(seed);
  const auto start = Clock::now();

  // First start: a port below the ephemeral range, kept for every restart.
  std::unique_ptr<RelayProcess> relay;
  std::uint16_t port = 0;
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    port = CandidatePort(prng);
    relay = std::make_unique<RelayProcess>(data(), log(), port, std::vector<std::string>{}, false,
                                           kRelayStartDeadline);
    if (relay->ok()) break;
  }
  ASSERT_TRUE(relay->ok()) << LogTail();
  port = relay->address().port;
  const std::string address_text = relay->address_text();

  // The queues, made before the load starts (NEW + KEY on one connection).
  std::array<Queue, kQueues> queues;
  {
    RelayClient c(relay->address());
    ASSERT_TRUE(c.ok()) << c.error().message;
    for (Queue& q : queues) ASSERT_TRUE(MakeQueue(c, q));
  }

  // Each worker holds its own copy of the address (and its own io_context).
  std::vector<RelayAddress> addresses;
  for (int i = 0; i < 2 * kQueues; ++i) addresses.push_back(relay->address().Clone());
  Shared shared;
  shared.hard_deadline = start + kHardDeadline;
  Workers workers{shared, {}, {}};
  for (int qi = 0; qi < kQueues; ++qi) {
    workers.recipients.emplace_back(RunRecipient, std::ref(shared),
                                    std::cref(addresses[2 * qi]), std::cref(queues[qi]), qi, seed);
    workers.senders.emplace_back(RunSender, std::ref(shared), std::cref(addresses[2 * qi + 1]),
                                 std::cref(queues[qi]), qi, seed);
  }
  auto total_acked = [&] {
    std::lock_guard lock(shared.mu);
    std::size_t n = 0;
    for (const auto& r : shared.queues) n += r.acked_sends.size();
    return n;
  };

  // Warm up, so the first kill already lands under load.
  for (int i = 0; i < 10'000 && Clock::now() < start + kWarmUpDeadline; ++i) {
    if (total_acked() >= kWarmUpSends) break;
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_GE(total_acked(), kWarmUpSends) << "no load before the first kill\n" << LogTail();

  // Kill, restart, repeat.
  const int kills = std::uniform_int_distribution<int>(kMinKills, kMaxKills)(prng);
  std::uniform_int_distribution<int> delay_ms(0, kMaxKillDelayMs);
  std::vector<int> delays;
  std::vector<std::size_t> acked_at_kill;
  for (int k = 0; k < kills; ++k) {
    const int delay = delay_ms(prng);
    delays.push_back(delay);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    acked_at_kill.push_back(total_acked());
    relay->process().Signal(SIGKILL);
    ASSERT_EQ(relay->process().Wait(10s), 128 + SIGKILL)
        << "kill " << k << ": the relay was not running (it died on its own)\n" << LogTail();
    relay = std::make_unique<RelayProcess>(data(), log(), port, std::vector<std::string>{}, false,
                                           kRelayStartDeadline);
    ASSERT_TRUE(relay->ok()) << "restart " << k << " failed\n" << LogTail();
    EXPECT_EQ(relay->address_text(), address_text) << "the relay's address changed on restart";
  }

  // Let the clients work a little on the last run, then stop sending and drain.
  std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(prng)));
  workers.StopSenders();
  const auto drain_start = Clock::now();
  bool drained = false;
  for (int i = 0; i < 100'000 && Clock::now() < drain_start + kDrainDeadline; ++i) {
    {
      std::lock_guard lock(shared.mu);
      drained = std::all_of(shared.queues.begin(), shared.queues.end(),
                            [](const QueueRecord& r) { return Undelivered(r, 1).empty(); });
    }
    if (drained) break;
    std::this_thread::sleep_for(20ms);
  }
  // A little longer, so recipients acknowledge what is still in their window.
  std::this_thread::sleep_for(2 * kPushWait);
  workers.StopRecipients();
  const auto drain_time = Clock::now() - drain_start;

  // A last subscription per queue on a fresh connection: whatever the relay
  // still holds must not include a message whose ACK it acknowledged.
  std::size_t left_over = 0;
  for (int qi = 0; qi < kQueues; ++qi) {
    RelayClient c(relay->address());
    ASSERT_TRUE(c.ok()) << c.error().message;
    const Queue& q = queues[qi];
    auto sub = SubscribeTo(c, q);
    ASSERT_TRUE(sub && std::holds_alternative<RelayOk>(sub->body)) << "final SUB on queue " << qi;
    std::optional<std::uint64_t> last_number;
    for (int i = 0; i < 10'000; ++i) {
      auto push = c.NextPush(500ms);
      if (!push) break;
      const auto* m = std::get_if<QueueMessage>(&push->body);
      ASSERT_NE(m, nullptr) << "unexpected push on queue " << qi;
      ++left_over;
      RecordDelivery(shared, q, qi, seed, *m, last_number);
      auto ack = c.Call(AckMessage{q.recipient_id, m->message_id});
      ASSERT_TRUE(ack && std::holds_alternative<RelayOk>(ack->body));
    }
  }

  // The verdict.
  std::uint64_t acked = 0, attempts = 0, deliveries = 0, distinct = 0, redelivered = 0,
                confirmed = 0, sender_connects = 0, recipient_connects = 0;
  for (int qi = 0; qi < kQueues; ++qi) {
    const QueueRecord& r = shared.queues[qi];
    acked += r.acked_sends.size();
    attempts += r.send_attempts;
    deliveries += r.deliveries;
    distinct += r.delivered.size();
    for (const auto& [number, times] : r.delivered) redelivered += times - 1;
    confirmed += r.confirmed_acks.size();
    sender_connects += r.sender_connects;
    recipient_connects += r.recipient_connects;
    EXPECT_FALSE(r.acked_sends.empty()) << "queue " << qi << " carried no acknowledged SEND";
    auto missing = Undelivered(r, 10);
    std::string list;
    for (auto n : missing) list += " " + std::to_string(n);
    EXPECT_TRUE(missing.empty()) << "queue " << qi
                                 << ": acknowledged SENDs never delivered (first ones):" << list;
  }
  for (const auto& f : shared.failures) ADD_FAILURE() << f;
  EXPECT_EQ(shared.failures_dropped, 0u) << "more failures than listed";
  EXPECT_TRUE(drained) << "acknowledged SENDs still undelivered after the drain deadline";

  std::string delay_list;
  for (std::size_t k = 0; k < delays.size(); ++k) {
    delay_list += " " + std::to_string(delays[k]) + "ms@" + std::to_string(acked_at_kill[k]);
  }
  const auto seconds = [](auto d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count() / 1000.0;
  };
  std::cout << "[ crash    ] seed " << seed << ": " << kills << " kills (delay@acked-so-far:"
            << delay_list << ")\n"
            << "[ crash    ] " << acked << " SENDs acknowledged of " << attempts
            << " attempts; " << deliveries << " deliveries of " << distinct
            << " distinct messages (" << redelivered << " repeats), " << confirmed
            << " ACKs confirmed, " << left_over << " left for the final SUB; "
            << sender_connects << " sender and " << recipient_connects
            << " recipient connections; drain " << seconds(drain_time) << " s, total "
            << seconds(Clock::now() - start) << " s" << std::endl;
  if (HasFailure()) std::cout << "relay log (tail):\n" << LogTail() << std::endl;
}

}  // namespace
}  // namespace rhizome::testing
