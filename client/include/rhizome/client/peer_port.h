// PeerPort: one direct link to a contact's daemon (Noise XK, DESIGN §5), as
// the messenger uses it to send. The real implementation is PeerLink
// (peer_link.h); it is an interface so that the messenger core stays free of
// sockets.
//
// A link carries end-to-end ciphertexts one way (PeerMessage) and the peer's
// acknowledgements back (PeerAck: "committed"). Each daemon dials the other
// for what it sends, so neither ever waits for the other's worker thread: a
// Post returns at once and the acks are collected later (TakeAcks).
// Thread safety: one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"
#include "rhizome/protocol/wire_types.h"

namespace rhizome::crypto {
struct X25519KeyPair;
}

namespace rhizome::client {

// Where a contact's daemon listens, and the key it must prove (from the card).
struct PeerTarget {
  protocol::DirectAddress address;
  ByteArray<32> noise_key{};
  std::vector<std::uint16_t> versions;
};

class PeerPort {
 public:
  virtual ~PeerPort() = default;
  // False once the link is known to be closed.
  virtual bool CheckOpen() = 0;
  // Queues one end-to-end ciphertext (1..protocol::kMaxBlobBytes) for the peer;
  // never waits. Errors: kIo "direct link closed"; kLimitExceeded "direct link
  // is busy" (more than kMaxDirectInFlight unacknowledged, or the write queue
  // is full): try later.
  virtual Status Post(const protocol::Id& delivery_id, ByteSpan blob) = 0;
  // The delivery ids the peer acknowledged since the last call, waiting up to
  // `wait` for the first if there are none yet.
  virtual std::vector<protocol::Id> TakeAcks(std::chrono::milliseconds wait) = 0;
  // Messages posted and not yet acknowledged.
  virtual std::size_t in_flight() const = 0;
};

// Most messages posted on one link and not yet acknowledged. Enough to keep a
// link busy; small enough that what a dying link loses is soon sent again.
inline constexpr std::size_t kMaxDirectInFlight = 64;

// Opens a direct link as `self` (our Noise static key pair, borrowed for the
// call) within the timeout. PeerLinkConnector() (peer_link.h) is the real one.
using PeerConnectFn = std::function<Result<std::unique_ptr<PeerPort>>(
    const PeerTarget&, const crypto::X25519KeyPair& self, std::chrono::milliseconds)>;

}  // namespace rhizome::client
