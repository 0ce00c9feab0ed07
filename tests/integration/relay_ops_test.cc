// Operating rhizome-relay as a real process on 127.0.0.1: the config file
// (applied, overridden by flags, refused with its line and exit 2), the
// loopback-only Prometheus endpoint scraped after a real round trip, and log
// levels that never name a client.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "child_process.h"
#include "process.h"
#include "relay_client.h"
#include "relay_process.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/sign.h"
#include "test_support.h"

namespace rhizome::testing {
namespace {

namespace fs = std::filesystem;
using Queue = RelayQueue;
using namespace std::chrono_literals;
using namespace protocol;

ProcessOptions Bounded() {
  ProcessOptions options;
  options.deadline = 20s;
  return options;
}

fs::path SourceRoot() { return fs::path(RHIZOME_VECTORS_DIR).parent_path().parent_path(); }


class RelayOpsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(crypto::Init()); }
  fs::path data() const { return dir_.path() / "relay-data"; }
  fs::path log() const { return dir_.path() / "relay.log"; }
  fs::path WriteConfig(const std::string& text) const {
    fs::path path = dir_.path() / "relay.conf";
    std::ofstream(path) << text;
    return path;
  }
  // NEW, KEY, SUB, SEND, push, ACK; plus one SEND with a wrong MAC (kAuth).
  // Returns the queue's ids as hex, which must never appear in metrics or logs.
  std::vector<std::string> RoundTrip(const RelayAddress& address) {
    Queue q;
    RelayClient recipient(address);
    EXPECT_TRUE(recipient.ok()) << recipient.error().message;
    EXPECT_TRUE(MakeQueue(recipient, q));
    auto sub = recipient.CallWith([&](const Id& corr) -> RelayCommandBody {
      return Subscribe{q.recipient_id, recipient.Sign(q.recipient.secret_key, corr, q.recipient_id,
                                                      RelayCommandCode::kSub)};
    });
    EXPECT_TRUE(sub && std::holds_alternative<RelayOk>(sub->body));
    RelayClient sender(address);
    Bytes blob(protocol::kRelayBlobSizes[0], 0x5a);
    auto sent = SendTo(sender, q, blob);
    EXPECT_TRUE(sent && std::holds_alternative<RelayOk>(sent->body));
    auto push = recipient.NextPush(5s);
    EXPECT_TRUE(push);
    if (push) {
      auto* m = std::get_if<QueueMessage>(&push->body);
      EXPECT_NE(m, nullptr);
      if (m != nullptr) {
        auto ack = recipient.Call(AckMessage{q.recipient_id, m->message_id});
        EXPECT_TRUE(ack && std::holds_alternative<RelayOk>(ack->body));
      }
    }
    auto refused = sender.CallWith([&](const Id& corr) -> RelayCommandBody {
      ByteArray<32> wrong{};
      wrong.fill(9);
      return SendMessage{q.sender_id, sender.Mac(wrong, corr, q.sender_id, RelayCommandCode::kSend),
                         blob};
    });
    EXPECT_TRUE(refused && std::holds_alternative<RelayError>(refused->body));
    return {ToHex(q.recipient_id), ToHex(q.sender_id), ToHex(q.recipient.public_key)};
  }
  TempDir dir_;
};

TEST_F(RelayOpsTest, MetricsAreScrapedFromLoopbackAfterARoundTrip) {
  RelayProcess relay(data(), log(), 0, {"--metrics", "127.0.0.1:0"}, true);
  ASSERT_TRUE(relay.ok()) << ReadFileOrDie(log());
  ASSERT_NE(relay.metrics_port(), 0) << "no metrics address printed";
  auto secrets = RoundTrip(relay.address());

  std::string reply = HttpExchange(relay.metrics_port(),
                                   "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   "User-Agent: Prometheus/2.42\r\nAccept: text/plain\r\n\r\n");
  ASSERT_TRUE(reply.starts_with("HTTP/1.0 200 OK\r\n")) << reply.substr(0, 200);
  EXPECT_NE(reply.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  const std::string body = reply.substr(reply.find("\r\n\r\n") + 4);
  auto s = Samples(body);
  EXPECT_EQ(s["rhizome_relay_messages_stored_total"], 1u) << body;
  EXPECT_EQ(s["rhizome_relay_messages_delivered_total"], 1u) << body;
  EXPECT_EQ(s["rhizome_relay_queues"], 1u);
  EXPECT_EQ(s["rhizome_relay_rejections_total{reason=\"auth\"}"], 1u);
  EXPECT_GE(s["rhizome_relay_connections_accepted_total"], 2u);
  EXPECT_GE(s["rhizome_relay_commits_total"], 3u) << "NEW, KEY, SEND and ACK commit (>= 3 times)";
  EXPECT_EQ(s["rhizome_relay_commit_failures_total"], 0u);
  EXPECT_NE(body.find("# HELP rhizome_relay_messages_stored_total "), std::string::npos);
  EXPECT_NE(body.find("# TYPE rhizome_relay_messages_stored_total counter"), std::string::npos);
  // Nothing about a client: no address, no id, no key.
  EXPECT_EQ(reply.find("127.0.0.1"), std::string::npos);
  for (const auto& hex : secrets) EXPECT_EQ(reply.find(hex), std::string::npos) << hex;

  EXPECT_TRUE(
      HttpExchange(relay.metrics_port(), "GET / HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 404 "));
  EXPECT_TRUE(HttpExchange(relay.metrics_port(), "POST /metrics HTTP/1.0\r\n\r\n")
                  .starts_with("HTTP/1.0 400 "));
  EXPECT_TRUE(
      HttpExchange(relay.metrics_port(), std::string(9000, 'A')).starts_with("HTTP/1.0 400 "))
      << "an oversized request is refused, not buffered";
  // The relay still serves clients and metrics afterwards.
  RelayClient again(relay.address());
  EXPECT_TRUE(again.ok());
  EXPECT_TRUE(HttpExchange(relay.metrics_port(), "GET /metrics HTTP/1.0\r\n\r\n")
                  .starts_with("HTTP/1.0 200 "));
  relay.process().Signal(SIGTERM);
  EXPECT_EQ(relay.process().Wait(10s), 0);
}

TEST_F(RelayOpsTest, SilentMetricsClientIsCutOffAtTheDeadline) {
  RelayProcess relay(data(), log(), 0, {"--metrics", "127.0.0.1:0"}, true);
  ASSERT_TRUE(relay.ok());
  ASSERT_NE(relay.metrics_port(), 0);
  // Half a request, then silence: while it stalls others are answered, and the
  // relay closes it at its deadline (kMetricsRequestTimeout, 5 s; we wait 15 s).
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(relay.metrics_port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  (void)!write(fd, "GET /metr", 9);
  EXPECT_TRUE(HttpExchange(relay.metrics_port(), "GET /metrics HTTP/1.0\r\n\r\n")
                  .starts_with("HTTP/1.0 200 "))
      << "a stalled scrape blocks nobody";
  timeval tv{15, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char buf[64];
  ssize_t n = read(fd, buf, sizeof(buf));
  EXPECT_EQ(n, 0) << "the stalled connection was not closed by the relay";
  close(fd);
}

TEST_F(RelayOpsTest, MetricsOnANonLoopbackAddressAreRefused) {
  for (const char* where : {"0.0.0.0:0", "[::]:0", "localhost:0"}) {
    auto r = RunProcess(RHIZOME_RELAY_BIN,
                        {"--data", data().string(), "--listen", "127.0.0.1:0", "--metrics", where},
                        Bounded());
    EXPECT_EQ(r.exit_code, 2) << where << ": " << r.err;
    EXPECT_NE(r.err.find("loopback"), std::string::npos) << where << ": " << r.err;
    EXPECT_EQ(r.out.find("relay address"), std::string::npos) << "it must not start";
  }
}

TEST_F(RelayOpsTest, ConfigFileSetsLimitsAndFlagsOverrideIt) {
  // listen in the file is an address this machine cannot bind: the flag must win.
  auto config = WriteConfig(R"(# test relay
listen: "192.0.2.1:7750"
public_host: "127.0.0.1"
limits {
  max_queues_created_per_connection: 1  # one NEW per connection
}
)");
  RelayProcess relay(data(), log(), 0, {"--config", config.string()});
  ASSERT_TRUE(relay.ok()) << ReadFileOrDie(log());
  RelayClient c(relay.address());
  ASSERT_TRUE(c.ok());
  Queue a, b;
  ASSERT_TRUE(MakeQueue(c, a));
  auto second = c.Call(NewQueue{b.recipient.public_key});
  ASSERT_TRUE(second);
  auto* e = std::get_if<RelayError>(&second->body);
  ASSERT_NE(e, nullptr) << "the file's limit was not applied";
  EXPECT_EQ(e->code, RelayErrorCode::kQuota);
}

TEST_F(RelayOpsTest, AddressCommandFindsTheDataDirectoryInTheConfig) {
  auto config = WriteConfig("data: \"" + data().string() + "\"\nlisten: \"127.0.0.1:0\"\n");
  std::string printed;
  {
    ChildProcess relay(RHIZOME_RELAY_BIN, {"--config", config.string()}, {}, log().string());
    auto line = relay.WaitForLinePrefix("relay address: ", 15s);
    ASSERT_TRUE(line) << ReadFileOrDie(log());
    printed = *line;
    relay.Signal(SIGTERM);
    ASSERT_EQ(relay.Wait(10s), 0);
  }
  auto again = RunProcess(RHIZOME_RELAY_BIN, {"address", "--config", config.string()}, Bounded());
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "relay address: " + printed + "\n");
}

TEST_F(RelayOpsTest, BadConfigExitsWith2NamingFileLineAndField) {
  struct Case {
    const char* text;
    const char* mentions;
  };
  const Case cases[] = {
      {"listen: \"127.0.0.1:0\"\n\nfrobnicate: 3\n", "relay.conf:3:"},
      {"# ok\nlimits {\n  max_queues: 0\n}\n", "limits.max_queues"},
      {"limits {\n  max_queues: 0\n}\n", "relay.conf:2:"},
      {"metrics_listen: \"0.0.0.0:9750\"\n", "loopback"},
  };
  for (const auto& c : cases) {
    auto config = WriteConfig(c.text);
    auto r = RunProcess(RHIZOME_RELAY_BIN, {"--data", data().string(), "--config", config.string()},
                        Bounded());
    EXPECT_EQ(r.exit_code, 2) << c.text << r.err;
    EXPECT_NE(r.err.find(c.mentions), std::string::npos) << c.text << "\nstderr: " << r.err;
    EXPECT_EQ(r.out, "") << "a bad config must not start the relay";
  }
  auto missing = RunProcess(
      RHIZOME_RELAY_BIN,
      {"--data", data().string(), "--config", (dir_.path() / "nope.conf").string()}, Bounded());
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find("nope.conf"), std::string::npos) << missing.err;
}

TEST_F(RelayOpsTest, TheExampleConfigStartsARelay) {
  // The example's listen and metrics ports may be taken here: flags override them.
  RelayProcess relay(data(), log(), 0,
                     {"--config", (SourceRoot() / "relay/deploy/rhizome-relay.conf").string(),
                      "--public-host", "127.0.0.1", "--metrics", "127.0.0.1:0"},
                     true);
  ASSERT_TRUE(relay.ok()) << ReadFileOrDie(log());
  EXPECT_NE(relay.metrics_port(), 0);
  EXPECT_TRUE(fs::exists(data() / "relay.keys")) << "--data overrides the example's data";
}

TEST_F(RelayOpsTest, DebugLogsNameNoClient) {
  std::vector<std::string> secrets;
  {
    RelayProcess relay(data(), log(), 0, {"--log-level", "debug"});
    ASSERT_TRUE(relay.ok()) << ReadFileOrDie(log());
    secrets = RoundTrip(relay.address());
    // A connection that sends garbage instead of a handshake: logged at debug.
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(relay.address().port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    (void)!write(fd, "\x00\x05hello", 7);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[16];
    (void)read(fd, buf, sizeof(buf));  // the relay closes it
    close(fd);
    relay.process().Signal(SIGTERM);
    ASSERT_EQ(relay.process().Wait(10s), 0);
  }
  const std::string text = ReadFileOrDie(log());
  EXPECT_NE(text.find("rhizome-relay: debug: handshake failed"), std::string::npos) << text;
  EXPECT_NE(text.find("rhizome-relay: info: serving"), std::string::npos) << text;
  EXPECT_EQ(text.find("127.0.0.1"), std::string::npos) << text;
  for (const auto& hex : secrets) EXPECT_EQ(text.find(hex), std::string::npos) << hex;
}

TEST_F(RelayOpsTest, ErrorLevelKeepsTheLogQuiet) {
  {
    RelayProcess relay(data(), log(), 0, {"--log-level", "error"});
    ASSERT_TRUE(relay.ok()) << ReadFileOrDie(log());
    (void)RoundTrip(relay.address());
    relay.process().Signal(SIGTERM);
    ASSERT_EQ(relay.process().Wait(10s), 0);
  }
  EXPECT_EQ(ReadFileOrDie(log()), "") << "info lines at --log-level error";
  auto bad = RunProcess(RHIZOME_RELAY_BIN, {"--data", data().string(), "--log-level", "verbose"},
                        Bounded());
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
}

}  // namespace
}  // namespace rhizome::testing
