#include "rhizome/protocol/secure_session.h"

#include <algorithm>
#include <cstring>

#include "rhizome/crypto/random.h"
#include "rhizome/protocol/frame.h"
#include "rhizome/protocol/version.h"

namespace rhizome::protocol {

namespace {

constexpr std::string_view kRelayProtocol = "Noise_NKpsk0_25519_ChaChaPoly_BLAKE2b";
constexpr std::string_view kPeerProtocol = "Noise_XK_25519_ChaChaPoly_BLAKE2b";

std::string_view ProtocolName(ChannelKind kind) {
  return kind == ChannelKind::kClientToRelay ? kRelayProtocol : kPeerProtocol;
}

struct Candidate {
  std::uint16_t version;
  std::uint32_t key_index;
  crypto::NoiseHandshakeState hs;
};

// What only the handshake needs. Freed as soon as the session is established
// (or fails), so an established session keeps just its two cipher states,
// the handshake hash and a few small fields: a relay holds thousands of them.
struct Handshake {
  std::function<bool(ByteSpan)> authorize;
  // Responder, before the first message: one handshake per (version, key).
  std::vector<Candidate> candidates;
  std::optional<crypto::NoiseHandshakeState> hs;
  // Handshake-phase framing: small frames only, parsed by hand so that bytes
  // following the last handshake frame reach the transport decoder intact.
  Bytes buffer;
};

enum class Phase : std::uint8_t { kNew, kHandshake, kEstablished, kFailed };

}  // namespace

Bytes SessionPrologue(std::uint16_t version, ChannelKind kind) {
  Bytes p(kPrologueLabel.begin(), kPrologueLabel.end());
  p.push_back(static_cast<std::uint8_t>(version >> 8));
  p.push_back(static_cast<std::uint8_t>(version & 0xff));
  p.push_back(static_cast<std::uint8_t>(kind));
  return p;
}

struct SecureSession::Impl {
  ChannelKind kind = ChannelKind::kClientToRelay;
  crypto::NoiseRole role = crypto::NoiseRole::kInitiator;
  Phase phase = Phase::kNew;
  std::uint8_t hash_len = 0;
  std::uint16_t version = 0;
  std::uint32_t key_index = 0;
  std::unique_ptr<Handshake> handshake = std::make_unique<Handshake>();

  crypto::NoiseTransport transport;
  ByteArray<crypto::kNoiseMaxHashBytes> handshake_hash{};
  // The peer's static key, when it has one (a relay's clients have none):
  // on the heap, so that the relay's sessions do not carry 40 empty bytes.
  std::unique_ptr<const ByteArray<32>> remote;
  Error failure{Errc::kInternal, "session failed"};  // meaningful in kFailed
  // Transport framing: whole frames are decrypted straight from the received
  // bytes; only an incomplete frame waits here for the rest (at most one
  // frame, kFrameHeaderBytes + kMaxFrameBytes). Empty, without capacity, while
  // no frame is split.
  Bytes partial;

  Status Fail(Error e) {
    phase = Phase::kFailed;
    failure = e;
    handshake.reset();
    transport = {};
    Bytes().swap(partial);
    return e;
  }

  static Status AppendHandshakeFrame(const Bytes& message, Bytes& out) {
    return AppendFrame(out, message);
  }

  Status Established() {
    auto& hs = handshake->hs;
    auto t = hs->Split();
    if (!t) return Fail(t.error());
    transport = std::move(*t);
    const Bytes h = hs->HandshakeHash();
    if (h.size() > handshake_hash.size()) {
      return Fail({Errc::kInternal, "handshake hash too long"});
    }
    std::copy(h.begin(), h.end(), handshake_hash.begin());
    hash_len = static_cast<std::uint8_t>(h.size());
    if (auto rs = hs->RemoteStatic()) remote = std::make_unique<const ByteArray<32>>(*rs);
    handshake.reset();  // wipes the handshake's secrets and frees its memory
    phase = Phase::kEstablished;
    return {};
  }

  // Handles one complete handshake frame body.
  Status OnHandshakeMessage(ByteSpan body, Bytes& out) {
    auto& hs = handshake->hs;
    if (!hs) {
      // Responder, first message: the candidate that authenticates wins.
      for (auto& c : handshake->candidates) {
        auto payload = c.hs.ReadMessage(body);
        if (!payload) continue;
        if (!payload->empty()) return Fail({Errc::kMalformed, "handshake payload must be empty"});
        version = c.version;
        key_index = c.key_index;
        hs.emplace(std::move(c.hs));
        break;
      }
      std::vector<Candidate>().swap(handshake->candidates);
      if (!hs) return Fail({Errc::kAuthenticationFailed, "handshake failed"});
    } else {
      auto payload = hs->ReadMessage(body);
      if (!payload) return Fail({Errc::kAuthenticationFailed, "handshake failed"});
      if (!payload->empty()) return Fail({Errc::kMalformed, "handshake payload must be empty"});
    }
    if (hs->IsComplete()) {
      if (kind == ChannelKind::kPeerLink && role == crypto::NoiseRole::kResponder) {
        auto rs = hs->RemoteStatic();
        // SECURITY: XK's responder learns the initiator in message 3; an
        // unknown initiator is dropped before any transport message is read.
        if (!rs || !handshake->authorize(*rs)) {
          return Fail({Errc::kAuthenticationFailed, "unknown peer"});
        }
      }
      return Established();
    }
    if (hs->IsMyTurn()) {
      auto msg = hs->WriteMessage({});
      if (!msg) return Fail(msg.error());
      if (auto st = AppendHandshakeFrame(*msg, out); !st) return Fail(st.error());
      if (hs->IsComplete()) return Established();
    }
    return {};
  }

  // Decrypts one transport frame body and delivers its plaintext.
  Status OnTransportFrame(ByteSpan body, std::vector<Bytes>& received) {
    auto plain = transport.receive.DecryptWithAd({}, body);
    if (!plain) return Fail(plain.error());
    // Seal never sends an empty message; an empty one is not ours.
    if (plain->empty()) return Fail({Errc::kMalformed, "empty transport message"});
    received.push_back(std::move(*plain));
    return {};
  }

  // Transport phase: `data` continues the byte stream. Every length prefix is
  // judged as soon as its two bytes are here, before any frame of this call is
  // decrypted (a zero-length frame fails the session and delivers nothing
  // from `data`), and before its body is awaited. (A 2-byte prefix cannot
  // announce more than kMaxFrameBytes.)
  Status OnTransportBytes(ByteSpan data, std::vector<Bytes>& received) {
    std::size_t pos = 0;
    if (!partial.empty()) {
      // Bytes still missing from the split frame, once its header is known.
      const std::size_t have = partial.size();
      if (have < kFrameHeaderBytes) {
        pos = std::min(kFrameHeaderBytes - have, data.size());
        partial.insert(partial.end(), data.begin(),
                       data.begin() + static_cast<std::ptrdiff_t>(pos));
        if (partial.size() < kFrameHeaderBytes) return {};
      }
      const std::size_t len = (std::size_t{partial[0]} << 8) | partial[1];
      if (len == 0) return Fail({Errc::kMalformed, "zero-length frame"});
      const std::size_t need = kFrameHeaderBytes + len - partial.size();
      // Judge the prefixes of the whole frames that follow before decrypting.
      if (need <= data.size() - pos) {
        if (auto st = CheckPrefixes(data.subspan(pos + need)); !st) return st;
      }
      const std::size_t take = std::min(need, data.size() - pos);
      if (partial.capacity() < kFrameHeaderBytes + len) partial.reserve(kFrameHeaderBytes + len);
      partial.insert(partial.end(), data.begin() + static_cast<std::ptrdiff_t>(pos),
                     data.begin() + static_cast<std::ptrdiff_t>(pos + take));
      pos += take;
      if (take < need) return {};
      Bytes frame;
      frame.swap(partial);  // the buffer goes with this frame: nothing kept while idle
      if (auto st = OnTransportFrame(ByteSpan(frame).subspan(kFrameHeaderBytes), received); !st) {
        return st;
      }
    } else if (auto st = CheckPrefixes(data); !st) {
      return st;
    }
    // Whole frames straight from `data`.
    while (data.size() - pos >= kFrameHeaderBytes) {
      const std::size_t len = (std::size_t{data[pos]} << 8) | data[pos + 1];
      if (data.size() - pos - kFrameHeaderBytes < len) break;
      if (auto st = OnTransportFrame(data.subspan(pos + kFrameHeaderBytes, len), received); !st) {
        return st;
      }
      pos += kFrameHeaderBytes + len;
    }
    // An incomplete last frame waits for the rest.
    if (pos < data.size()) {
      partial.assign(data.begin() + static_cast<std::ptrdiff_t>(pos), data.end());
    }
    return {};
  }

  // Walks the length prefixes in `data` (which starts on a frame boundary).
  Status CheckPrefixes(ByteSpan data) {
    std::size_t pos = 0;
    while (pos + kFrameHeaderBytes <= data.size()) {  // (pos may pass the end)
      const std::size_t len = (std::size_t{data[pos]} << 8) | data[pos + 1];
      if (len == 0) return Fail({Errc::kMalformed, "zero-length frame"});
      pos += kFrameHeaderBytes + len;
    }
    return {};
  }
};

SecureSession::SecureSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SecureSession::SecureSession(SecureSession&&) noexcept = default;
SecureSession& SecureSession::operator=(SecureSession&&) noexcept = default;
SecureSession::~SecureSession() = default;

Result<SecureSession> SecureSession::Create(const SecureSessionConfig& config,
                                            crypto::RandomSource& rng) {
  const bool initiator = config.role == crypto::NoiseRole::kInitiator;
  const bool relay = config.kind == ChannelKind::kClientToRelay;
  if (config.kind != ChannelKind::kClientToRelay && config.kind != ChannelKind::kPeerLink) {
    return Error{Errc::kInvalidArgument, "unknown channel kind"};
  }
  // Which keys each role must (and must not) bring.
  const std::size_t statics = config.local_statics.size();
  if (initiator) {
    if (!config.remote_static) return Error{Errc::kInvalidArgument, "initiator needs the peer's key"};
    if (relay ? statics != 0 : statics != 1) {
      return Error{Errc::kInvalidArgument, "wrong number of local static keys for the role"};
    }
  } else {
    if (config.remote_static) return Error{Errc::kInvalidArgument, "responder takes no remote key"};
    if (statics == 0) return Error{Errc::kInvalidArgument, "responder needs a static key"};
    if (!config.peer_versions.empty()) {
      return Error{Errc::kInvalidArgument, "responder takes no peer versions"};
    }
  }
  for (const auto* k : config.local_statics) {
    if (k == nullptr) return Error{Errc::kInvalidArgument, "null static key"};
  }
  if (relay != (config.psk != nullptr)) {
    return Error{Errc::kInvalidArgument, "a PSK is required for (and only for) relay channels"};
  }
  if (config.psk != nullptr && config.psk->size() != 32) {
    return Error{Errc::kInvalidArgument, "relay access key must be 32 bytes"};
  }
  const bool needs_authorizer = !relay && !initiator;
  if (needs_authorizer != static_cast<bool>(config.authorize_initiator)) {
    return Error{Errc::kInvalidArgument, "authorize_initiator is for peer-link responders only"};
  }

  auto impl = std::make_unique<Impl>();
  impl->kind = config.kind;
  impl->role = config.role;
  impl->handshake->authorize = config.authorize_initiator;

  auto make = [&](std::uint16_t version,
                  const crypto::X25519KeyPair* local) -> Result<crypto::NoiseHandshakeState> {
    Bytes prologue = SessionPrologue(version, config.kind);
    crypto::NoiseHandshakeConfig hc;
    hc.protocol_name = ProtocolName(config.kind);
    hc.role = config.role;
    hc.prologue = prologue;
    hc.local_static = local;
    hc.remote_static = config.remote_static;
    if (config.psk != nullptr) hc.psks = std::span<const crypto::SecretBytes>(config.psk, 1);
    hc.fixed_ephemeral = config.fixed_ephemeral;
    return crypto::NoiseHandshakeState::Create(hc, rng);
  };

  if (initiator) {
    std::uint16_t version = kSupportedWireVersions[0];  // our highest
    if (!config.peer_versions.empty()) {
      version = HighestCommonVersion(config.peer_versions.data(), config.peer_versions.size());
      if (version == 0) return Error{Errc::kUnsupported, "no protocol version in common"};
    }
    auto hs = make(version, statics ? config.local_statics[0] : nullptr);
    if (!hs) return hs.error();
    impl->handshake->hs.emplace(std::move(*hs));
    impl->version = version;
  } else {
    for (std::uint16_t version : kSupportedWireVersions) {
      for (std::size_t i = 0; i < statics; ++i) {
        auto hs = make(version, config.local_statics[i]);
        if (!hs) return hs.error();
        impl->handshake->candidates.push_back(
            Candidate{version, static_cast<std::uint32_t>(i), std::move(*hs)});
      }
    }
    impl->phase = Phase::kHandshake;
  }
  return SecureSession(std::move(impl));
}

Status SecureSession::Start(Bytes& out) {
  auto& s = *impl_;
  if (s.role != crypto::NoiseRole::kInitiator) return {};
  if (s.phase != Phase::kNew) return Error{Errc::kInvalidArgument, "session already started"};
  s.phase = Phase::kHandshake;
  auto msg = s.handshake->hs->WriteMessage({});
  if (!msg) return s.Fail(msg.error());
  if (auto st = Impl::AppendHandshakeFrame(*msg, out); !st) return s.Fail(st.error());
  return {};
}

Status SecureSession::OnBytes(ByteSpan data, Bytes& out, std::vector<Bytes>& received) {
  auto& s = *impl_;
  if (s.phase == Phase::kFailed) return s.failure;
  if (s.phase == Phase::kNew) return Error{Errc::kInvalidArgument, "session not started"};

  std::size_t pos = 0;
  while (s.phase == Phase::kHandshake && pos < data.size()) {
    Bytes& buffer = s.handshake->buffer;
    // Take bytes up to the end of the current handshake frame only.
    std::size_t need = kFrameHeaderBytes;
    if (buffer.size() >= kFrameHeaderBytes) {
      std::size_t len = (std::size_t{buffer[0]} << 8) | buffer[1];
      need = kFrameHeaderBytes + len;
    }
    std::size_t take = std::min(need - buffer.size(), data.size() - pos);
    buffer.insert(buffer.end(), data.begin() + static_cast<std::ptrdiff_t>(pos),
                  data.begin() + static_cast<std::ptrdiff_t>(pos + take));
    pos += take;
    if (buffer.size() == kFrameHeaderBytes) {
      std::size_t len = (std::size_t{buffer[0]} << 8) | buffer[1];
      if (len == 0) return s.Fail({Errc::kMalformed, "zero-length frame"});
      if (len > kMaxHandshakeFrameBytes) {
        return s.Fail({Errc::kLimitExceeded, "handshake frame exceeds the limit"});
      }
      continue;
    }
    if (buffer.size() > kFrameHeaderBytes && buffer.size() == need) {
      Bytes body(buffer.begin() + kFrameHeaderBytes, buffer.end());
      buffer.clear();
      if (auto st = s.OnHandshakeMessage(body, out); !st) return st;
    }
  }
  if (s.phase != Phase::kEstablished || pos == data.size()) return {};
  return s.OnTransportBytes(data.subspan(pos), received);
}

Status SecureSession::Seal(ByteSpan plaintext, Bytes& out) {
  auto& s = *impl_;
  if (s.phase != Phase::kEstablished) {
    return Error{Errc::kInvalidArgument, "secure channel is not established"};
  }
  if (plaintext.empty() || plaintext.size() > kMaxSessionPayloadBytes) {
    return Error{Errc::kLimitExceeded, "payload size out of range"};
  }
  const std::size_t body = plaintext.size() + crypto::kNoiseTagBytes;
  const std::size_t start = out.size();
  out.resize(start + kFrameHeaderBytes + body);
  out[start] = static_cast<std::uint8_t>(body >> 8);
  out[start + 1] = static_cast<std::uint8_t>(body & 0xff);
  auto st = s.transport.send.EncryptWithAd(
      {}, plaintext, MutableByteSpan(out).subspan(start + kFrameHeaderBytes, body));
  if (!st) {
    out.resize(start);
    return st;
  }
  return {};
}

crypto::NoiseRole SecureSession::role() const { return impl_->role; }
bool SecureSession::established() const { return impl_->phase == Phase::kEstablished; }
bool SecureSession::failed() const { return impl_->phase == Phase::kFailed; }
std::uint16_t SecureSession::version() const { return impl_->version; }
ByteSpan SecureSession::handshake_hash() const {
  return ByteSpan(impl_->handshake_hash).first(impl_->hash_len);
}
std::optional<ByteArray<32>> SecureSession::remote_static() const {
  if (!impl_->remote) return std::nullopt;
  return *impl_->remote;
}
std::size_t SecureSession::local_static_index() const { return impl_->key_index; }

}  // namespace rhizome::protocol
