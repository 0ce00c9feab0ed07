// Known-answer tests for the Noise framework against three independent
// implementations' public vectors (cacophony, snow, noise-c) and the collected
// vectors for Rhizome's recommended protocols.
//
// For every vector both parties run: the sender's WriteMessage must produce the
// vector's ciphertext byte for byte, and the receiver's ReadMessage of that
// ciphertext must give the payload. After the handshake the same holds for the
// transport messages under Split(); handshake_hash is checked where given.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/noise.h"
#include "rhizome/crypto/random.h"
#include "test_support.h"

namespace rhizome::crypto {
namespace {

using nlohmann::json;
using testing::Hex;

class CryptoInitEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { ASSERT_TRUE(Init().ok()); }
};
[[maybe_unused]] auto* const kInitEnv =
    ::testing::AddGlobalTestEnvironment(new CryptoInitEnvironment);

std::string ProtocolName(const json& v) {
  if (v.contains("protocol_name")) return v["protocol_name"].get<std::string>();
  return v["name"].get<std::string>();
}

Bytes HexField(const json& v, const char* key) { return Hex(v[key].get<std::string>()); }

struct Party {
  std::optional<X25519KeyPair> local_static;
  std::optional<SecretBytes> ephemeral;
  std::vector<SecretBytes> psks;
  std::optional<NoiseHandshakeState> hs;
};

// Builds one side's HandshakeState from the vector's `prefix` ("init"/"resp")
// fields, giving it only the keys its pattern uses.
::testing::AssertionResult MakeParty(const json& v, const NoiseProtocol& protocol, NoiseRole role,
                                     Party& party) {
  const std::string prefix = role == NoiseRole::kInitiator ? "init" : "resp";
  auto field = [&](const char* suffix) { return prefix + suffix; };
  NoiseHandshakeConfig config;
  config.protocol_name = protocol.name();
  config.role = role;
  const Bytes prologue = HexField(v, field("_prologue").c_str());
  config.prologue = prologue;
  if (protocol.NeedsLocalStatic(role)) {
    if (!v.contains(field("_static"))) {
      return ::testing::AssertionFailure() << "vector lacks " << field("_static");
    }
    auto kp = X25519FromSecret(HexField(v, field("_static").c_str()));
    if (!kp) return ::testing::AssertionFailure() << "bad static key";
    party.local_static.emplace(std::move(kp).value());
    config.local_static = &*party.local_static;
  }
  if (protocol.NeedsRemoteStatic(role)) {
    if (!v.contains(field("_remote_static"))) {
      return ::testing::AssertionFailure() << "vector lacks " << field("_remote_static");
    }
    // *_remote_static is the peer's public key; cross-check it against the
    // public half of the peer's own private key.
    const Bytes given = HexField(v, field("_remote_static").c_str());
    if (given.size() != 32) return ::testing::AssertionFailure() << "bad remote static key";
    ByteArray<32> rs{};
    std::copy(given.begin(), given.end(), rs.begin());
    const std::string peer_static =
        (role == NoiseRole::kInitiator ? "resp" : "init") + std::string("_static");
    if (v.contains(peer_static)) {
      auto own = X25519FromSecret(HexField(v, peer_static.c_str()));
      if (!own || own->public_key != rs) {
        return ::testing::AssertionFailure() << "remote_static is not the peer's public key";
      }
    }
    config.remote_static = rs;
  }
  if (protocol.SendsEphemeral(role)) {
    if (!v.contains(field("_ephemeral"))) {
      return ::testing::AssertionFailure() << "vector lacks " << field("_ephemeral");
    }
    party.ephemeral.emplace(SecretBytes::CopyFrom(HexField(v, field("_ephemeral").c_str())));
    config.fixed_ephemeral = &*party.ephemeral;
  }
  if (protocol.psk_count() > 0) {
    const auto& list = v[field("_psks")];
    for (const auto& p : list)
      party.psks.push_back(SecretBytes::CopyFrom(Hex(p.get<std::string>())));
    config.psks = party.psks;
  }
  auto hs = NoiseHandshakeState::Create(config, SystemRandom());
  if (!hs) return ::testing::AssertionFailure() << "Create failed: " << hs.error().message;
  party.hs.emplace(std::move(hs).value());
  return ::testing::AssertionSuccess();
}

// Runs one vector end to end. Returns success or a description of the mismatch.
::testing::AssertionResult RunVector(const json& v) {
  const std::string name = ProtocolName(v);
  auto parsed = NoiseProtocol::Parse(name);
  if (!parsed) return ::testing::AssertionFailure() << name << ": " << parsed.error().message;
  const NoiseProtocol& protocol = parsed.value();

  Party init, resp;
  if (auto r = MakeParty(v, protocol, NoiseRole::kInitiator, init); !r)
    return r << " (" << name << ")";
  if (auto r = MakeParty(v, protocol, NoiseRole::kResponder, resp); !r)
    return r << " (" << name << ")";

  const auto& messages = v["messages"];
  std::optional<NoiseTransport> init_t, resp_t;
  std::size_t i = 0;
  for (const auto& m : messages) {
    const Bytes payload = HexField(m, "payload");
    const Bytes ciphertext = HexField(m, "ciphertext");
    const bool from_initiator = protocol.one_way() || i % 2 == 0;
    Party& sender = from_initiator ? init : resp;
    Party& receiver = from_initiator ? resp : init;
    Bytes written, read;
    if (!sender.hs->IsComplete()) {
      if (!sender.hs->IsMyTurn() || receiver.hs->IsMyTurn()) {
        return ::testing::AssertionFailure() << name << ": turn mismatch at message " << i;
      }
      auto w = sender.hs->WriteMessage(payload);
      if (!w)
        return ::testing::AssertionFailure()
               << name << ": write " << i << ": " << w.error().message;
      written = std::move(w).value();
      auto r = receiver.hs->ReadMessage(ciphertext);
      if (!r)
        return ::testing::AssertionFailure() << name << ": read " << i << ": " << r.error().message;
      read = std::move(r).value();
      if (sender.hs->IsComplete() != receiver.hs->IsComplete()) {
        return ::testing::AssertionFailure() << name << ": completion mismatch";
      }
      if (init.hs->IsComplete()) {
        auto a = init.hs->Split();
        auto b = resp.hs->Split();
        if (!a || !b) return ::testing::AssertionFailure() << name << ": split failed";
        init_t.emplace(std::move(a).value());
        resp_t.emplace(std::move(b).value());
      }
    } else {
      NoiseTransport& st = from_initiator ? *init_t : *resp_t;
      NoiseTransport& rt = from_initiator ? *resp_t : *init_t;
      auto w = st.send.EncryptWithAd({}, payload);
      if (!w) return ::testing::AssertionFailure() << name << ": encrypt " << i;
      written = std::move(w).value();
      auto r = rt.receive.DecryptWithAd({}, ciphertext);
      if (!r) return ::testing::AssertionFailure() << name << ": decrypt " << i;
      read = std::move(r).value();
    }
    if (written != ciphertext) {
      return ::testing::AssertionFailure()
             << name << ": message " << i << " ciphertext differs: " << ToHex(written);
    }
    if (read != payload) {
      return ::testing::AssertionFailure() << name << ": message " << i << " payload differs";
    }
    ++i;
  }
  if (!init.hs->IsComplete() || !resp.hs->IsComplete()) {
    return ::testing::AssertionFailure() << name << ": handshake did not complete";
  }
  if (init.hs->HandshakeHash() != resp.hs->HandshakeHash()) {
    return ::testing::AssertionFailure() << name << ": handshake hashes differ";
  }
  if (init.hs->HandshakeHash().size() != protocol.hash_len()) {
    return ::testing::AssertionFailure() << name << ": handshake hash length";
  }
  if (v.contains("handshake_hash") && init.hs->HandshakeHash() != HexField(v, "handshake_hash")) {
    return ::testing::AssertionFailure() << name << ": handshake_hash differs";
  }
  return ::testing::AssertionSuccess();
}

struct FileCounts {
  std::size_t ran = 0;
  std::size_t with_hash = 0;
  std::size_t skipped = 0;
};

// Runs every supported vector of `file`. Skips only pre-revision-32 NoisePSK_*
// names; everything else in these subsets is a supported pattern, so an
// unsupported one is a failure, not a skip.
FileCounts RunFile(const char* file) {
  FileCounts counts;
  const json doc = json::parse(testing::ReadFileOrDie(testing::VectorPath(file)));
  for (const auto& v : doc["vectors"]) {
    const std::string name = ProtocolName(v);
    if (name.rfind("NoisePSK_", 0) == 0) {
      ++counts.skipped;
      continue;
    }
    EXPECT_TRUE(RunVector(v));
    ++counts.ran;
    if (v.contains("handshake_hash")) ++counts.with_hash;
  }
  std::printf("[ noise ] %s: %zu vectors ran (%zu with handshake_hash), %zu skipped\n", file,
              counts.ran, counts.with_hash, counts.skipped);
  return counts;
}

// The expected counts guard against a parsing slip silently skipping vectors.
TEST(NoiseVectors, RecommendedProtocolsAllPass) {
  const FileCounts c = RunFile("recommended_protocols_vectors.json");
  EXPECT_GE(c.ran, 18u);
  EXPECT_GE(c.with_hash, 13u);
}

TEST(NoiseVectors, CacophonySubsetAllPass) {
  const FileCounts c = RunFile("cacophony_25519_ChaChaPoly_subset.json");
  EXPECT_GE(c.ran, 72u);
  EXPECT_GE(c.with_hash, 72u);
}

TEST(NoiseVectors, SnowSubsetAllPass) {
  const FileCounts c = RunFile("snow_25519_ChaChaPoly_subset.json");
  EXPECT_GE(c.ran, 56u);
}

TEST(NoiseVectors, NoiseCBasicSubsetAllPass) {
  const FileCounts c = RunFile("noise-c-basic_25519_ChaChaPoly_subset.json");
  EXPECT_GE(c.ran, 30u);
  EXPECT_GE(c.with_hash, 30u);
}

// The patterns Rhizome depends on (DESIGN §5, §6) must each be covered by at
// least one vector in BLAKE2b, the suite Rhizome uses.
TEST(NoiseVectors, EveryRhizomePatternHasABlake2bVector) {
  const json doc = json::parse(
      testing::ReadFileOrDie(testing::VectorPath("recommended_protocols_vectors.json")));
  for (const char* name :
       {"Noise_NKpsk0_25519_ChaChaPoly_BLAKE2b", "Noise_XK_25519_ChaChaPoly_BLAKE2b",
        "Noise_Xpsk1_25519_ChaChaPoly_BLAKE2b"}) {
    bool found = false;
    for (const auto& v : doc["vectors"]) found = found || ProtocolName(v) == name;
    EXPECT_TRUE(found) << name;
  }
  const json caco = json::parse(
      testing::ReadFileOrDie(testing::VectorPath("cacophony_25519_ChaChaPoly_subset.json")));
  bool kk = false;
  for (const auto& v : caco["vectors"])
    kk = kk || ProtocolName(v) == "Noise_KK_25519_ChaChaPoly_BLAKE2b";
  EXPECT_TRUE(kk);
}

}  // namespace
}  // namespace rhizome::crypto
