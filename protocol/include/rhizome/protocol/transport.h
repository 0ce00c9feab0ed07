// Transport messages: what the plaintext of one transport frame carries after
// the Noise handshake (frame.h is the layer below). Exactly one
// TransportMessage per frame. Field by field in docs/protocol/transport-message.md.
//
// Versioning: the wire version of a connection is agreed in the Noise
// prologue (DESIGN §5), so both sides of a channel speak the same message set.
// A message whose oneof is not set is therefore a protocol error:
// kUnsupported if it carried unknown fields (a peer speaking a variant this
// build does not know), else kMalformed. Either way the connection is closed.
//
// Invariant: a TransportMessage returned by ParseTransportMessage has passed
// ValidateTransportMessage. Thread safety: value types and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <variant>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"
#include "rhizome/protocol/frame.h"
#include "rhizome/protocol/relay_messages.h"
#include "rhizome/protocol/wire_types.h"

namespace rhizome::protocol {

// Noise's AEAD tag: a transport frame's body is the plaintext plus 16 bytes.
inline constexpr std::size_t kTransportTagBytes = 16;
// Largest serialised TransportMessage: what fits one frame after encryption.
inline constexpr std::size_t kMaxTransportMessageBytes = kMaxFrameBytes - kTransportTagBytes;

// One end-to-end message over a direct link.
struct PeerMessage {
  Id delivery_id{};  // random per transmission
  Bytes blob;        // 1..kMaxBlobBytes
};
// The receiver has durably committed the PeerMessage with this delivery id.
struct PeerAck {
  Id delivery_id{};
};
struct Ping {};
struct Pong {};

// Unknown values (a newer peer) are kept; treat them as kNormal.
enum class CloseReason : std::uint32_t {
  kNormal = 1,
  kProtocolError = 2,
  kIdleTimeout = 3,
  kShuttingDown = 4,
  kLimitExceeded = 5,
};
struct Close {
  CloseReason reason = CloseReason::kNormal;  // 1..2^31-1
};

using TransportMessage =
    std::variant<RelayCommand, RelayReply, PeerMessage, PeerAck, Ping, Pong, Close>;

// Errors: as ValidateRelayCommand / ValidateRelayReply; kMalformed for a zero
// delivery id, an empty blob or a close reason of 0; kLimitExceeded for a blob
// above kMaxBlobBytes.
Status ValidateTransportMessage(const TransportMessage& message);

// Errors: kLimitExceeded "transport message is too large" if bytes.size() >
// kMaxTransportMessageBytes (checked first); kMalformed if protobuf refuses
// the bytes, a field has the wrong size, or no variant is set; kUnsupported if
// no known variant is set but unknown fields are present; kLimitExceeded if a
// count is above its limit; then as ValidateTransportMessage.
Result<TransportMessage> ParseTransportMessage(ByteSpan bytes);

// Errors: as ValidateTransportMessage; kLimitExceeded if the encoding exceeds
// kMaxTransportMessageBytes (e.g. a BoardItems reply with too many large blobs:
// the relay sends fewer items).
Result<Bytes> SerializeTransportMessage(const TransportMessage& message);
// The same into `out`, which keeps its capacity for the next call (the relay
// serializes every reply into one buffer before sealing it). On an error
// `out` is left as it was.
Status SerializeTransportMessageInto(const TransportMessage& message, Bytes& out);

// The relay's per-message frames (a SEND or an ACK in, an Ok or a
// QueueMessage out) skip protobuf's message objects: ParseTransportMessage
// reads the exact encoding protobuf writes for a SEND or an ACK (every field
// once, in field order, lengths in their shortest form, nothing else) itself
// and hands anything else to protobuf; SerializeTransportMessage writes an Ok
// or a QueueMessage reply itself, byte for byte as protobuf would. The
// protobuf-only paths below are what both must agree with
// (tests/unit/protocol/transport_fast_path_test.cc); nothing else calls them.
namespace internal {
Result<TransportMessage> ParseTransportMessageWithProtobuf(ByteSpan bytes);
Result<Bytes> SerializeTransportMessageWithProtobuf(const TransportMessage& message);
}  // namespace internal

}  // namespace rhizome::protocol
