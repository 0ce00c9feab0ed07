// No loss, no duplicates (issue 5 §4): two profiles, each run by a real
// `rhizome daemon`, exchange 1,000 messages each way through real relays on
// 127.0.0.1 while the relay and both daemons are killed with SIGKILL and
// restarted at random moments. Afterwards each side holds exactly the other's
// 1,000 messages, once each, in order, every outgoing one receipted, and no
// file anyone wrote contains a message text.
//
// Messages are submitted through the daemons' API socket (docs/api.md). Kills
// fall between two submissions (so the test knows exactly what it submitted)
// but at random points of the daemons' own delivery passes, which run every
// 100 ms in the background: mid-upload, mid-fetch, between commit and ACK.
// Every wait is bounded; the whole run has a deadline.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "daemon_process.h"
#include "process.h"
#include "relay_process.h"
#include "test_support.h"

namespace rhizome::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int kMessagesEachWay = 1000;
constexpr auto kRunDeadline = 240s;
// Long enough that finding one by chance in megabytes of ciphertext is out of
// the question (a 3-letter name turns up in ~6% of 1 MB random files).
constexpr const char* kNameA = "Ana Kill-Test-Name-Marker";
constexpr const char* kNameB = "Ben Kill-Test-Name-Marker";

std::string Text(char from, int i) { return std::string("kill-test ") + from + "-" + std::to_string(i); }

class MessagingKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rng_.seed(std::random_device{}());
    a_ = std::make_unique<Node>(tmp_.path() / "a", kNameA, tmp_.path() / "a.log");
    b_ = std::make_unique<Node>(tmp_.path() / "b", kNameB, tmp_.path() / "b.log");
    ASSERT_TRUE(a_->Init());
    ASSERT_TRUE(b_->Init());
  }

  void StartRelay(int i, std::uint16_t port) {
    relays_[i] = std::make_unique<RelayProcess>(
        tmp_.path() / ("relay" + std::to_string(i)),
        tmp_.path() / ("relay" + std::to_string(i) + "-" + std::to_string(++relay_starts_) + ".log"),
        port);
    ASSERT_TRUE(relays_[i]->ok());
  }

  void KillRelay(int i) {
    relays_[i]->process().Signal(SIGKILL);
    (void)relays_[i]->process().Wait(10s);
  }

  // Both daemons running; invite, accept, wait for confirmation. `direct`: a
  // --direct invite (both daemons must listen).
  void Connect(bool direct = false) {
    for (auto* n : {a_.get(), b_.get()}) {
      for (auto& [i, relay] : relays_) {
        auto r = n->Call({{"relayAdd", {{"address", relay->address_text()}}}});
        ASSERT_TRUE(IsOk(r)) << (r ? r->dump() : "no answer");
      }
    }
    auto invite = a_->Call(
        {{"inviteCreate", {{"uses", 1}, {"lifetimeSeconds", 3600}, {"direct", direct}}}});
    ASSERT_TRUE(IsOk(invite));
    auto accepted = b_->Call({{"accept", {{"code", (*invite)["invite"]["code"]}, {"name", kNameA}}}});
    ASSERT_TRUE(IsOk(accepted)) << accepted->dump();
    auto name = WaitConfirmed(*a_, *b_, 30s);
    ASSERT_TRUE(name.has_value()) << "contacts not confirmed in 30 s";
    peer_of_a_ = *name;
  }

  // Submits up to `n` next messages from `from` (returns how many were accepted).
  int SubmitBatch(Node& from, const std::string& to, char tag, int& next, int n) {
    int done = 0;
    while (done < n && next < kMessagesEachWay) {
      auto r = from.Call({{"send", {{"contact", to}, {"text", Text(tag, next)}}}});
      if (!IsOk(r)) break;  // cannot happen between kills; checked at the end by counts
      ++next;
      ++done;
    }
    return done;
  }

  struct Tally {
    std::vector<std::string> incoming;
    int outgoing_delivered = 0;
    int outgoing = 0;
  };

  std::optional<Tally> Read(Node& n) {
    auto r = n.Call({{"read", json::object()}});
    if (!IsOk(r)) return std::nullopt;
    Tally t;
    for (const auto& m : (*r)["messages"]["messages"]) {
      if (m["outgoing"].get<bool>()) {
        ++t.outgoing;
        if (m["state"] == "delivered") ++t.outgoing_delivered;
      } else {
        t.incoming.push_back(m["text"]);
      }
    }
    return t;
  }

  // Runs the exchange with random kills among `victims` ("relay0", "relay1", "a", "b").
  void Exchange(const std::vector<std::string>& victims, std::optional<int> relay_gone_for_good) {
    int next_a = 0;
    int next_b = 0;
    int kills = 0;
    const auto start = std::chrono::steady_clock::now();
    std::uniform_int_distribution<int> batch(1, 40);
    std::uniform_int_distribution<int> pause_ms(0, 250);
    std::uniform_int_distribution<std::size_t> pick(0, victims.size() - 1);
    std::bernoulli_distribution kill_now(0.35);
    // Random kills, but never more than two rounds in a row without one: a
    // purely random schedule fell below the 10 kills asserted below in ~1-2%
    // of runs (about 49 rounds of which 35% kill).
    int rounds_without_kill = 0;
    bool retired = false;
    while (next_a < kMessagesEachWay || next_b < kMessagesEachWay) {
      ASSERT_LT(std::chrono::steady_clock::now() - start, kRunDeadline) << "submission stalled";
      SubmitBatch(*a_, peer_of_a_, 'a', next_a, batch(rng_));
      SubmitBatch(*b_, kNameA, 'b', next_b, batch(rng_));
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng_)));
      if (relay_gone_for_good && !retired && next_a > kMessagesEachWay / 3) {
        KillRelay(*relay_gone_for_good);  // down for good: the other relay carries on
        retired = true;
      }
      if (!kill_now(rng_) && rounds_without_kill < 2) {
        ++rounds_without_kill;
        continue;
      }
      const std::string v = victims[pick(rng_)];
      if (v != "a" && v != "b" && retired && relay_gone_for_good == (v == "relay0" ? 0 : 1)) {
        ++rounds_without_kill;  // already gone: no kill this round
        continue;
      }
      ++kills;
      rounds_without_kill = 0;
      if (v == "a" || v == "b") {
        Node& n = v == "a" ? *a_ : *b_;
        n.Kill();
        std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng_)));
        ASSERT_TRUE(n.Start()) << "daemon " << v << " did not restart";
      } else {
        const int i = v == "relay0" ? 0 : 1;
        const std::uint16_t port = relays_[i]->address().port;
        KillRelay(i);
        std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng_)));
        StartRelay(i, port);
      }
    }
    kills_ = kills;
    const auto submitted = std::chrono::steady_clock::now();
    // Quiet period: everything up, wait until both sides hold everything.
    const auto until = std::chrono::steady_clock::now() + 120s;
    std::optional<Tally> ta, tb;
    while (std::chrono::steady_clock::now() < until) {
      ta = Read(*a_);
      tb = Read(*b_);
      if (ta && tb && ta->incoming.size() >= kMessagesEachWay &&
          tb->incoming.size() >= kMessagesEachWay &&
          ta->outgoing_delivered == kMessagesEachWay && tb->outgoing_delivered == kMessagesEachWay) {
        break;
      }
      std::this_thread::sleep_for(200ms);
    }
    ASSERT_TRUE(ta && tb);
    const auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
    std::printf("submitted in %.1f s, all delivered %.1f s later\n", secs(submitted - start),
                secs(std::chrono::steady_clock::now() - submitted));
    EXPECT_GE(kills_, 10) << "too few kills to mean anything";
    EXPECT_EQ(ta->outgoing, kMessagesEachWay);
    EXPECT_EQ(tb->outgoing, kMessagesEachWay);
    EXPECT_EQ(ta->outgoing_delivered, kMessagesEachWay);
    EXPECT_EQ(tb->outgoing_delivered, kMessagesEachWay);
    std::vector<std::string> want_at_a, want_at_b;
    for (int i = 0; i < kMessagesEachWay; ++i) {
      want_at_a.push_back(Text('b', i));
      want_at_b.push_back(Text('a', i));
    }
    EXPECT_EQ(ta->incoming, want_at_a) << "A's copy of B's messages: lost, duplicated or reordered";
    EXPECT_EQ(tb->incoming, want_at_b) << "B's copy of A's messages: lost, duplicated or reordered";
  }

  // No file anyone wrote (profiles, relay data, logs) holds a message text.
  void ExpectNoPlaintextOnDisk() {
    for (const auto& e : fs::recursive_directory_iterator(tmp_.path())) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      EXPECT_EQ(data.find("kill-test "), std::string::npos) << e.path().filename();
      EXPECT_EQ(data.find("Kill-Test-Name-Marker"), std::string::npos) << e.path().filename();
    }
  }

  void TearDown() override {
    if (a_) (void)a_->Stop();
    if (b_) (void)b_->Stop();
    for (auto& [i, r] : relays_) {
      if (r) (void)r->Stop();
    }
  }

  TempDir tmp_;
  std::mt19937 rng_;
  std::unique_ptr<Node> a_, b_;
  std::map<int, std::unique_ptr<RelayProcess>> relays_;
  int relay_starts_ = 0;
  std::string peer_of_a_;
  int kills_ = 0;
};

TEST_F(MessagingKillTest, ThousandEachWayThroughRelayWithRandomKills) {
  StartRelay(0, 0);
  ASSERT_TRUE(a_->Start());
  ASSERT_TRUE(b_->Start());
  Connect();
  Exchange({"relay0", "a", "b"}, std::nullopt);
  ASSERT_EQ(a_->Stop(), 0);
  ASSERT_EQ(b_->Stop(), 0);
  ExpectNoPlaintextOnDisk();
  std::printf("kills: %d\n", kills_);
}

TEST_F(MessagingKillTest, SecondRelayTakesOverWhenTheFirstIsGoneForGood) {
  StartRelay(0, 0);
  StartRelay(1, 0);
  ASSERT_TRUE(a_->Start());
  ASSERT_TRUE(b_->Start());
  Connect();
  Exchange({"relay1", "a", "b"}, 0);
  ASSERT_EQ(a_->Stop(), 0);
  ASSERT_EQ(b_->Stop(), 0);
  ExpectNoPlaintextOnDisk();
  std::printf("kills: %d\n", kills_);
}

TEST_F(MessagingKillTest, ThousandEachWayOverDirectLinksOnlyWithRandomKills) {
  // First contact needs a relay (DESIGN §6: the invite names a request queue);
  // after it the relay is gone for good and only the direct links remain.
  for (auto* n : {a_.get(), b_.get()}) {
    const std::uint16_t port = FreeLoopbackPort();
    ASSERT_NE(port, 0);
    n->set_daemon_args({"--listen", "127.0.0.1:" + std::to_string(port)});
  }
  StartRelay(0, 0);
  ASSERT_TRUE(a_->Start());
  ASSERT_TRUE(b_->Start());
  Connect(/*direct=*/true);
  KillRelay(0);
  Exchange({"a", "b"}, std::nullopt);
  ASSERT_EQ(a_->Stop(), 0);
  ASSERT_EQ(b_->Stop(), 0);
  ExpectNoPlaintextOnDisk();
  std::printf("kills: %d\n", kills_);
}

}  // namespace
}  // namespace rhizome::testing
