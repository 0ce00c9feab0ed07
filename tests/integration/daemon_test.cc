// `rhizome daemon` as a process: its API socket (docs/api.md), events,
// the command line going through it, one daemon per profile, hostile lines.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "daemon_process.h"
#include "process.h"
#include "relay_process.h"
#include "test_support.h"

namespace rhizome::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

// A raw connection to a daemon's socket: write lines, read lines (bounded).
class ApiStream {
 public:
  explicit ApiStream(const fs::path& socket_path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = socket_path.string();
    std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof addr.sun_path - 1));
    ok_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~ApiStream() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return ok_; }
  bool Write(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // The next line, or nullopt at EOF or after `deadline`.
  std::optional<std::string> ReadLine(std::chrono::milliseconds deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      if (auto nl = in_.find('\n'); nl != std::string::npos) {
        std::string line = in_.substr(0, nl);
        in_.erase(0, nl + 1);
        return line;
      }
      if (std::chrono::steady_clock::now() >= until) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) return std::nullopt;
      in_.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
  std::string in_;
};

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    relay_.emplace(tmp_.path() / "relay", tmp_.path() / "relay.log", 0);
    ASSERT_TRUE(relay_->ok());
    a_ = std::make_unique<Node>(tmp_.path() / "a", "Daemon Test A", tmp_.path() / "a.log");
    b_ = std::make_unique<Node>(tmp_.path() / "b", "Daemon Test B", tmp_.path() / "b.log");
    ASSERT_TRUE(a_->Init());
    ASSERT_TRUE(b_->Init());
    ASSERT_TRUE(a_->Start());
    ASSERT_TRUE(b_->Start());
  }
  void TearDown() override {
    if (a_) (void)a_->Stop();
    if (b_) (void)b_->Stop();
    if (relay_) (void)relay_->Stop();
  }

  // A invites, B accepts (as "A"); waits until both are confirmed.
  void Connect() {
    for (Node* n : {a_.get(), b_.get()}) {
      ASSERT_TRUE(IsOk(n->Call({{"relayAdd", {{"address", relay_->address_text()}}}})));
    }
    auto invite = a_->Call({{"inviteCreate", json::object()}});
    ASSERT_TRUE(IsOk(invite));
    ASSERT_TRUE(IsOk(b_->Call({{"accept", {{"code", (*invite)["invite"]["code"]}, {"name", "A"}}}})));
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < until) {
      auto ca = a_->Call({{"contacts", json::object()}});
      auto cb = b_->Call({{"contacts", json::object()}});
      if (IsOk(ca) && IsOk(cb) && (*ca)["contacts"]["contacts"].size() == 1 &&
          (*ca)["contacts"]["contacts"][0]["status"] == "confirmed" &&
          (*cb)["contacts"]["contacts"][0]["status"] == "confirmed") {
        return;
      }
      std::this_thread::sleep_for(100ms);
    }
    FAIL() << "not confirmed in 30 s";
  }

  TempDir tmp_;
  std::optional<RelayProcess> relay_;
  std::unique_ptr<Node> a_, b_;
};

TEST_F(DaemonTest, SubscribersGetAnEventForEachNewMessage) {
  Connect();
  ApiStream events(b_->dir() / "profile.sock");
  ASSERT_TRUE(events.ok());
  ASSERT_TRUE(events.Write("{\"id\":\"5\",\"subscribe\":{}}\n"));
  auto ack = events.ReadLine(10s);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(json::parse(*ack)["id"], "5");
  auto sent = a_->Call({{"send", {{"contact", "Daemon Test B"}, {"text", "hello events"}}}});
  ASSERT_TRUE(IsOk(sent)) << sent->dump();
  auto line = events.ReadLine(20s);
  ASSERT_TRUE(line.has_value()) << "no event within 20 s";
  auto event = json::parse(*line);
  EXPECT_EQ(event["event"]["messageReceived"]["text"], "hello events");
  EXPECT_EQ(event["event"]["messageReceived"]["contact"], "A");
}

TEST_F(DaemonTest, CommandLineGoesThroughTheDaemonWithoutThePassphrase) {
  Connect();
  ProcessOptions opts;  // no RHIZOME_PASSPHRASE: only the daemon can answer
  opts.deadline = 30s;
  auto r = RunProcess(RHIZOME_CLI_BIN, {"--profile", a_->dir().string(), "contacts", "--json"},
                      opts);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto contacts = json::parse(r.out);
  ASSERT_EQ(contacts["contacts"].size(), 1u);
  EXPECT_EQ(contacts["contacts"][0]["status"], "confirmed");
}

TEST_F(DaemonTest, ASecondDaemonForTheSameProfileIsRefused) {
  ProcessOptions opts;
  opts.env = {{"RHIZOME_PASSPHRASE", kDaemonTestPassphrase}};
  opts.deadline = 30s;
  auto r = RunProcess(RHIZOME_CLI_BIN, {"--profile", a_->dir().string(), "daemon"}, opts);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("a daemon already runs for this profile"), std::string::npos) << r.err;
}

TEST_F(DaemonTest, MalformedRequestsGetErrorsAndOversizedLinesCloseTheConnection) {
  ApiStream s(a_->dir() / "profile.sock");
  ASSERT_TRUE(s.ok());
  const std::pair<std::string, std::string> cases[] = {
      {"not json", "malformed"},
      {"{\"send\":{\"contact\":\"x\",\"text\":\"y\"},\"unknownField\":1}", "malformed"},
      {"{}", "invalid_argument"},
      {"{\"id\":\"3\"}", "invalid_argument"},
      {"[1,2,3]", "malformed"},
      {"{\"send\":{\"contact\":\"nobody\",\"text\":\"y\"}}", "not_found"},
  };
  for (const auto& [line, code] : cases) {
    ASSERT_TRUE(s.Write(line + "\n"));
    auto reply = s.ReadLine(10s);
    ASSERT_TRUE(reply.has_value()) << line;
    auto r = json::parse(*reply, nullptr, false);
    ASSERT_FALSE(r.is_discarded()) << *reply;
    EXPECT_EQ(r["error"]["code"], code) << line;
    // Error text never repeats the input.
    EXPECT_EQ(reply->find("nobody"), std::string::npos);
  }
  // A line beyond 64 KiB: an error, then the connection closes.
  ASSERT_TRUE(s.Write(std::string(70 * 1024, 'x')));
  auto reply = s.ReadLine(10s);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(json::parse(*reply)["error"]["code"], "limit_exceeded");
  EXPECT_FALSE(s.ReadLine(5s).has_value());
  // The daemon still serves others.
  EXPECT_TRUE(IsOk(a_->Call({{"contacts", json::object()}})));
}

TEST_F(DaemonTest, SigtermExitsCleanlyAndRemovesTheSocket) {
  EXPECT_EQ(a_->Stop(), 0);
  EXPECT_FALSE(fs::exists(a_->dir() / "profile.sock"));
}

}  // namespace
}  // namespace rhizome::testing
