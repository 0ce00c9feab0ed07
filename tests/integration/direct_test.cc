// Direct links between daemons (issue 5 §1, §3; DESIGN §5, §11): a --direct
// invite, then messages and receipts over Noise_XK links with no relay
// running, and the listener's refusal of anyone who is not a contact. Real
// `rhizome daemon` processes on 127.0.0.1; every wait is bounded.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "daemon_process.h"
#include "process.h"
#include "relay_process.h"
#include "rhizome/client/peer_link.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/version.h"
#include "rhizome/storage/identity_store.h"
#include "rhizome/storage/profile.h"
#include "test_support.h"

namespace rhizome::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

class DirectLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = std::make_unique<Node>(tmp_.path() / "a", "Ana Direct", tmp_.path() / "a.log");
    b_ = std::make_unique<Node>(tmp_.path() / "b", "Ben Direct", tmp_.path() / "b.log");
    ASSERT_TRUE(a_->Init());
    ASSERT_TRUE(b_->Init());
    port_a_ = FreeLoopbackPort();
    port_b_ = FreeLoopbackPort();
    ASSERT_NE(port_a_, 0);
    ASSERT_NE(port_b_, 0);
  }

  void TearDown() override {
    if (a_) (void)a_->Stop();
    if (b_) (void)b_->Stop();
    if (relay_) (void)relay_->Stop();
  }

  // B's Noise static public key, read from its profile (no daemon may hold it).
  ByteArray<32> NoiseKeyOf(const Node& n) {
    auto p = storage::Profile::Open(n.dir(), AsBytes(kDaemonTestPassphrase));
    EXPECT_TRUE(p.ok());
    ByteArray<32> k{};
    if (!p) return k;
    auto id = storage::LoadIdentity(p->db());
    EXPECT_TRUE(id.ok());
    if (id) k = id->noise.public_key;
    return k;
  }

  // Both listening, one relay for first contact; A invites with --direct.
  void Connect() {
    a_->set_daemon_args({"--listen", "127.0.0.1:" + std::to_string(port_a_)});
    b_->set_daemon_args({"--listen", "127.0.0.1:" + std::to_string(port_b_)});
    relay_ = std::make_unique<RelayProcess>(tmp_.path() / "relay", tmp_.path() / "relay.log", 0);
    ASSERT_TRUE(relay_->ok());
    ASSERT_TRUE(a_->Start());
    ASSERT_TRUE(b_->Start());
    for (auto* n : {a_.get(), b_.get()}) {
      ASSERT_TRUE(IsOk(n->Call({{"relayAdd", {{"address", relay_->address_text()}}}})));
    }
    auto invite = a_->Call(
        {{"inviteCreate", {{"uses", 1}, {"lifetimeSeconds", 3600}, {"direct", true}}}});
    ASSERT_TRUE(IsOk(invite)) << (invite ? invite->dump() : "no answer");
    ASSERT_TRUE(IsOk(b_->Call({{"accept", {{"code", (*invite)["invite"]["code"]}, {"name", "Ana"}}}})));
    auto name = WaitConfirmed(*a_, *b_, 30s);
    ASSERT_TRUE(name.has_value()) << "contacts not confirmed in 30 s";
    b_name_at_a_ = *name;
  }

  // Waits until `n` has `outgoing` messages delivered and `incoming` received;
  // returns its last read.
  std::optional<json> WaitDelivered(Node& n, std::size_t outgoing, std::size_t incoming) {
    const auto until = std::chrono::steady_clock::now() + 30s;
    std::optional<json> last;
    while (std::chrono::steady_clock::now() < until) {
      last = n.Call({{"read", json::object()}});
      if (IsOk(last)) {
        std::size_t delivered = 0;
        std::size_t received = 0;
        for (const auto& m : (*last)["messages"]["messages"]) {
          if (m["outgoing"].get<bool>() && m["state"] == "delivered") ++delivered;
          if (!m["outgoing"].get<bool>()) ++received;
        }
        if (delivered == outgoing && received == incoming) return last;
      }
      std::this_thread::sleep_for(100ms);
    }
    return last;
  }

  TempDir tmp_;
  std::unique_ptr<Node> a_, b_;
  std::unique_ptr<RelayProcess> relay_;
  std::uint16_t port_a_ = 0, port_b_ = 0;
  std::string b_name_at_a_;
};

TEST_F(DirectLinkTest, MessagesAndReceiptsFlowDirectlyOnceTheRelayIsGone) {
  Connect();
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(relay_->Stop(), 0);  // from here on, nothing but the direct links
  relay_.reset();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(IsOk(a_->Call({{"send", {{"contact", b_name_at_a_}, {"text", "a" + std::to_string(i)}}}})));
    ASSERT_TRUE(IsOk(b_->Call({{"send", {{"contact", "Ana"}, {"text", "b" + std::to_string(i)}}}})));
  }
  auto ra = WaitDelivered(*a_, 5, 5);
  auto rb = WaitDelivered(*b_, 5, 5);
  ASSERT_TRUE(IsOk(ra) && IsOk(rb));
  std::vector<std::string> at_a, at_b;
  std::size_t delivered_a = 0;
  for (const auto& m : (*ra)["messages"]["messages"]) {
    if (m["outgoing"].get<bool>()) {
      delivered_a += m["state"] == "delivered" ? 1 : 0;
    } else {
      at_a.push_back(m["text"]);
    }
  }
  for (const auto& m : (*rb)["messages"]["messages"]) {
    if (!m["outgoing"].get<bool>()) at_b.push_back(m["text"]);
  }
  EXPECT_EQ(delivered_a, 5u);
  EXPECT_EQ(at_a, (std::vector<std::string>{"b0", "b1", "b2", "b3", "b4"}));
  EXPECT_EQ(at_b, (std::vector<std::string>{"a0", "a1", "a2", "a3", "a4"}));
}

TEST_F(DirectLinkTest, ListenerDropsAnInitiatorThatIsNotAContact) {
  const ByteArray<32> b_key = NoiseKeyOf(*b_);
  b_->set_daemon_args({"--listen", "127.0.0.1:" + std::to_string(port_b_)});
  ASSERT_TRUE(b_->Start());
  const auto stranger = crypto::X25519Generate(crypto::SystemRandom());
  client::PeerTarget target;
  target.address = {"127.0.0.1", port_b_};
  target.versions.assign(std::begin(protocol::kSupportedWireVersions),
                         std::end(protocol::kSupportedWireVersions));
  // The right key pinned, but we are nobody B knows: refused after message 3.
  // The initiator's side completes when it writes message 3 (XK), so the
  // connect succeeds and the responder must then close the link.
  target.noise_key = b_key;
  auto link = client::PeerLink::Connect(target, stranger, 5s);
  ASSERT_TRUE(link.ok()) << "the listener did not answer the handshake at all";
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (link->CheckOpen() && std::chrono::steady_clock::now() < until) {
    (void)link->TakeAcks(50ms);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_FALSE(link->CheckOpen()) << "the listener kept a stranger's link open";
  // A wrong key pinned: the handshake fails at once.
  target.noise_key[0] ^= 1;
  auto wrong = client::PeerLink::Connect(target, stranger, 5s);
  EXPECT_FALSE(wrong.ok());
  EXPECT_EQ(b_->Stop(), 0);
}

TEST_F(DirectLinkTest, DirectInviteNeedsAListeningAddress) {
  relay_ = std::make_unique<RelayProcess>(tmp_.path() / "relay", tmp_.path() / "relay.log", 0);
  ASSERT_TRUE(relay_->ok());
  ASSERT_TRUE(a_->Start());  // no --listen
  ASSERT_TRUE(IsOk(a_->Call({{"relayAdd", {{"address", relay_->address_text()}}}})));
  auto r = a_->Call({{"inviteCreate", {{"uses", 1}, {"direct", true}}}});
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->contains("error")) << r->dump();
  EXPECT_NE((*r)["error"]["message"].get<std::string>().find("no direct address"), std::string::npos);
  // Without --direct the same profile makes an invite.
  EXPECT_TRUE(IsOk(a_->Call({{"inviteCreate", {{"uses", 1}}}})));
}

}  // namespace
}  // namespace rhizome::testing
