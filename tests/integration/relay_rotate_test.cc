// Relay key rotation end to end (DESIGN §9, docs/relay.md "Rotating keys"):
// the real rhizome-relay on 127.0.0.1 is stopped, rotated with
// `rhizome-relay rotate` and restarted; a client holding the old address
// still connects during the transition, verifies and follows the pushed
// statement, and reconnects with the new address; after the transition the
// old address fails cleanly. An in-process stand-in relay pushes forged and
// replayed statements over a real channel: the client ignores them.
#include <gtest/gtest.h>
#include <signal.h>

#include <asio.hpp>
#include <chrono>
#include <asio/experimental/as_tuple.hpp>
#include <ctime>
#include <filesystem>
#include <future>
#include <thread>

#include "child_process.h"
#include "process.h"
#include "relay_client.h"
#include "relay_process.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/net/channel.h"
#include "rhizome/protocol/relay_key_statement.h"
#include "rhizome/protocol/transport.h"
#include "test_support.h"

namespace rhizome::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace protocol;

// A port that was free a moment ago (the relay binds with SO_REUSEADDR, so it
// can restart on the same port, as an operator's relay does).
std::uint16_t FreePort() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}


bool Send(RelayClient& c, const RelayQueue& q, const Bytes& blob) {
  auto r = SendTo(c, q, blob);
  return r && std::holds_alternative<RelayOk>(r->body);
}

std::optional<Bytes> Get(RelayClient& c, const RelayQueue& q) {
  auto r = c.CallWith([&](const Id& corr) -> RelayCommandBody {
    return GetMessage{q.recipient_id,
                      c.Sign(q.recipient.secret_key, corr, q.recipient_id, RelayCommandCode::kGet)};
  });
  if (!r) return std::nullopt;
  auto* m = std::get_if<QueueMessage>(&r->body);
  if (m == nullptr) return std::nullopt;
  return m->blob;
}

std::uint64_t UnixNow() { return static_cast<std::uint64_t>(std::time(nullptr)); }

class RelayRotateTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(crypto::Init()); }
  fs::path data() const { return dir_.path() / "relay-data"; }
  fs::path log() const { return dir_.path() / "relay.log"; }

  // Runs `rhizome-relay rotate --data DIR ARGS...`; returns the new address text.
  std::string Rotate(std::vector<std::string> args) {
    args.insert(args.begin(), {"rotate", "--data", data().string()});
    auto r = RunProcess(RHIZOME_RELAY_BIN, args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::string prefix = "relay address: ";
    auto at = r.out.find(prefix);
    if (at == std::string::npos) return {};
    auto end = r.out.find('\n', at);
    return r.out.substr(at + prefix.size(), end - at - prefix.size());
  }

  TempDir dir_;
};

TEST_F(RelayRotateTest, ClientWithTheOldAddressFollowsTheStatementDuringTheTransition) {
  const std::uint16_t port = FreePort();
  std::string text_a;
  RelayQueue q;
  {
    RelayProcess relay(data(), log(), port, {"--closed"});
    ASSERT_FALSE(relay.address_text().empty());
    text_a = relay.address_text();
    RelayClient c(relay.address());
    ASSERT_TRUE(c.ok()) << c.error().message;
    ASSERT_TRUE(MakeQueue(c, q));
    EXPECT_EQ(c.statements_followed() + c.statements_ignored(), 0u);  // nothing rotated yet
    c.Close();
    ASSERT_EQ(relay.Stop(), 0);
  }
  const RelayAddress a = ParseRelayAddress(text_a).value();

  const std::string text_b = Rotate({"--noise"});
  ASSERT_FALSE(text_b.empty());
  const RelayAddress b = ParseRelayAddress(text_b).value();
  EXPECT_NE(b.noise_key, a.noise_key);
  EXPECT_EQ(b.signing_key, a.signing_key);
  EXPECT_EQ(b.host, a.host);
  EXPECT_EQ(b.port, a.port);
  EXPECT_TRUE(b.psk.ConstantTimeEquals(a.psk));  // --noise keeps the access key

  RelayProcess relay(data(), log(), port);
  ASSERT_EQ(relay.address_text(), text_b);  // the restarted relay serves the new keys

  // A client holding A still gets in, and follows the pushed statement to B.
  RelayClient old_client(a);
  ASSERT_TRUE(old_client.ok()) << old_client.error().message;
  ASSERT_TRUE(old_client.WaitForStatements(1, 10s));
  EXPECT_EQ(old_client.statements_followed(), 1u);
  EXPECT_EQ(old_client.followed_serial(), 1u);
  EXPECT_EQ(FormatRelayAddress(old_client.address()).value(), text_b);
  // The old connection keeps working for this session.
  ASSERT_TRUE(Send(old_client, q, Bytes(1280, 0x5a)));
  old_client.Close();

  // It reconnects with the address it updated to and round-trips a message.
  RelayClient sender(old_client.address(), old_client.followed_serial());
  ASSERT_TRUE(sender.ok()) << sender.error().message;
  ASSERT_TRUE(sender.WaitForStatements(1, 10s));  // pushed again: same serial, ignored
  EXPECT_EQ(sender.statements_ignored(), 1u);
  EXPECT_EQ(sender.last_ignored_reason(), Errc::kAlreadyExists);
  EXPECT_EQ(FormatRelayAddress(sender.address()).value(), text_b);
  const Bytes blob(512, 0xa7);  // a fixed relay blob size
  ASSERT_TRUE(Send(sender, q, blob));

  RelayClient recipient(b, 1);
  ASSERT_TRUE(recipient.ok()) << recipient.error().message;
  auto first = Get(recipient, q);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, Bytes(1280, 0x5a));  // the message sent over the old key's session
  ASSERT_EQ(relay.Stop(), 0);
}

TEST_F(RelayRotateTest, AfterTheTransitionTheOldAddressFailsCleanly) {
  const std::uint16_t port = FreePort();
  RelayAddress a;
  {
    RelayProcess relay(data(), log(), port);
    ASSERT_FALSE(relay.address_text().empty());
    a = relay.address().Clone();
    ASSERT_EQ(relay.Stop(), 0);
  }
  const std::string text_b = Rotate({"--transition", "1s"});
  ASSERT_FALSE(text_b.empty());
  // The transition ends at most 1 s after rotate exited: wait until then by
  // the relay's clock (the same wall clock). No assertion on time.
  const std::uint64_t rotated_by = UnixNow();
  while (UnixNow() <= rotated_by + 1) std::this_thread::sleep_for(100ms);

  RelayProcess relay(data(), log(), port);
  ASSERT_EQ(relay.address_text(), text_b);
  RelayClient old_client(a);
  EXPECT_FALSE(old_client.ok());  // the handshake under the old key is refused
  EXPECT_EQ(old_client.statements_followed(), 0u);

  // The relay is unaffected: the new address works and gets the statement.
  RelayClient fresh(ParseRelayAddress(text_b).value());
  ASSERT_TRUE(fresh.ok()) << fresh.error().message;
  ASSERT_TRUE(fresh.WaitForStatements(1, 10s));
  EXPECT_EQ(fresh.followed_serial(), 1u);  // a fresh paste learns the serial
  RelayQueue q;
  EXPECT_TRUE(MakeQueue(fresh, q));
  ASSERT_EQ(relay.Stop(), 0);
}

TEST_F(RelayRotateTest, NewAccessKeyLocksOutTheOldAddressAtOnce) {
  const std::uint16_t port = FreePort();
  RelayAddress a;
  {
    RelayProcess relay(data(), log(), port, {"--closed"});
    ASSERT_FALSE(relay.address_text().empty());
    a = relay.address().Clone();
    ASSERT_EQ(relay.Stop(), 0);
  }
  const std::string text_b = Rotate({"--psk"});
  const RelayAddress b = ParseRelayAddress(text_b).value();
  EXPECT_EQ(b.noise_key, a.noise_key);
  EXPECT_FALSE(b.psk.ConstantTimeEquals(a.psk));

  RelayProcess relay(data(), log(), port);
  RelayClient old_client(a);
  EXPECT_FALSE(old_client.ok());  // whoever held the old key learns nothing new
  RelayClient fresh(b);
  ASSERT_TRUE(fresh.ok()) << fresh.error().message;
  RelayQueue q;
  EXPECT_TRUE(MakeQueue(fresh, q));
  ASSERT_EQ(relay.Stop(), 0);
}

TEST_F(RelayRotateTest, RotateWithoutTheKeyFileSaysToPutItBack) {
  auto r = RunProcess(RHIZOME_RELAY_BIN, {"rotate", "--data", data().string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("put relay.keys back"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST_F(RelayRotateTest, AccessKeyChangeWithATransitionIsRefused) {
  const std::uint16_t port = FreePort();
  {
    RelayProcess relay(data(), log(), port, {"--closed"});
    ASSERT_FALSE(relay.address_text().empty());
    ASSERT_EQ(relay.Stop(), 0);
  }
  auto r = RunProcess(RHIZOME_RELAY_BIN,
                      {"rotate", "--data", data().string(), "--psk", "--transition", "7d"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--transition 0"), std::string::npos) << r.err;
  auto both = RunProcess(RHIZOME_RELAY_BIN, {"rotate", "--data", data().string(), "--psk", "--open"});
  EXPECT_EQ(both.exit_code, 2);
}

// ---- a stand-in relay that pushes chosen statements ------------------------

// Serves NKpsk0 (open relay) on 127.0.0.1 with `noise`, and after each
// handshake pushes `pushes` in order, then holds the connection until the
// client closes it. Runs on its own thread.
class StandInRelay {
 public:
  StandInRelay(crypto::X25519KeyPair noise, std::vector<RelayKeyStatement> pushes)
      : noise_(std::move(noise)), pushes_(std::move(pushes)), psk_(32),
        acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io_, Accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~StandInRelay() {
    // Close everything on the relay's own thread, then stop it.
    std::promise<void> closed;
    asio::post(io_, [&] {
      asio::error_code ignored;
      acceptor_.close(ignored);
      for (auto& ch : channels_) ch->Close();
      channels_.clear();
      closed.set_value();
    });
    closed.get_future().wait_for(10s);
    io_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] =
          co_await acceptor_.async_accept(asio::experimental::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      SecureSessionConfig cfg;
      cfg.kind = ChannelKind::kClientToRelay;
      cfg.role = crypto::NoiseRole::kResponder;
      cfg.local_statics = {&noise_};
      cfg.psk = &psk_;
      auto session = SecureSession::Create(cfg, crypto::SystemRandom());
      if (!session) continue;
      auto ch = co_await net::Channel::Establish(std::move(socket), std::move(*session));
      if (!ch) continue;
      for (const auto& s : pushes_) {
        auto bytes = SerializeTransportMessage(RelayReply{std::nullopt, s.Clone()});
        if (bytes) (void)(*ch)->TrySend(*bytes);
      }
      channels_.push_back(*ch);
    }
  }

  asio::io_context io_;
  crypto::X25519KeyPair noise_;
  std::vector<RelayKeyStatement> pushes_;
  crypto::SecretBytes psk_;
  asio::ip::tcp::acceptor acceptor_;
  std::vector<std::shared_ptr<net::Channel>> channels_;
  std::thread thread_;
};

TEST_F(RelayRotateTest, ForgedOrReplayedStatementsAreIgnoredByTheClient) {
  auto& rng = crypto::SystemRandom();
  auto signing = crypto::Ed25519Generate(rng);  // the relay's real signing key
  auto forger = crypto::Ed25519Generate(rng);
  auto noise = crypto::X25519Generate(rng);
  auto Statement = [&](std::uint64_t serial, const crypto::Ed25519KeyPair& by) {
    RelayKeyStatement s;
    s.serial = serial;
    s.noise_key = crypto::X25519Generate(rng).public_key;
    s.valid_from = UnixNow();
    EXPECT_TRUE(SignRelayKeyStatement(s, by).ok());
    return s;
  };
  std::vector<RelayKeyStatement> pushes;
  pushes.push_back(Statement(9, forger));   // forged: wrong key
  pushes.push_back(Statement(3, signing));  // genuine, older than what the client followed
  pushes.push_back(Statement(5, signing));  // genuine, equal: a replay
  RelayKeyStatement tampered = Statement(8, signing);
  tampered.noise_key[0] ^= 1;               // genuine signature, changed key
  pushes.push_back(std::move(tampered));
  StandInRelay relay(crypto::X25519FromSecret(noise.secret_key.expose()).value(),
                     std::move(pushes));

  RelayAddress address;
  address.noise_key = noise.public_key;
  address.signing_key = signing.public_key;
  address.host = "127.0.0.1";
  address.port = relay.port();
  address.versions = {1};
  const std::string before = FormatRelayAddress(address).value();

  RelayClient c(address, /*followed_serial=*/5);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE(c.WaitForStatements(4, 10s));
  EXPECT_EQ(c.statements_followed(), 0u);
  EXPECT_EQ(c.statements_ignored(), 4u);
  EXPECT_EQ(c.followed_serial(), 5u);
  EXPECT_EQ(c.last_ignored_reason(), Errc::kAuthenticationFailed);  // the tampered one, last
  EXPECT_EQ(FormatRelayAddress(c.address()).value(), before);
  c.Close();
}

}  // namespace
}  // namespace rhizome::testing
