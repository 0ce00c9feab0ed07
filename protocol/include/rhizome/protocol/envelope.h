// The end-to-end envelope (DESIGN §11): the plaintext inside one Double
// Ratchet message, before padding. Field by field in docs/protocol/envelope.md.
//
// Every message has a random id, the sender's per-conversation sequence
// number and the digest of the sender's previous envelope, so a receiver sees
// gaps and forks. The chain: the first envelope (seq 1) has no prev_hash; every
// later one carries EnvelopeDigest() of the previous envelope's bytes exactly
// as they were sent (never re-serialised).
//
// Sizes: a serialised envelope is at most kMaxEnvelopeBytes, which is exactly
// what one padded block holds (padding.h), so an envelope is always one block.
// Invariant: an Envelope returned by ParseEnvelope has passed ValidateEnvelope.
// Thread safety: value types and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"
#include "rhizome/protocol/padding.h"
#include "rhizome/protocol/wire_types.h"

namespace rhizome::protocol {

// The envelope format version this build writes and reads.
inline constexpr std::uint32_t kEnvelopeVersion = 1;
// Largest serialised envelope, checked before decoding: one padded block.
inline constexpr std::size_t kMaxEnvelopeBytes = kMaxPaddableBytes;
// Largest body. The other fields take at most 85 bytes on the wire, so every
// valid envelope fits kMaxEnvelopeBytes.
inline constexpr std::size_t kMaxEnvelopeBodyBytes = 16256;

// What the body holds. The parser accepts any value in 1..2^31-1: a value this
// build does not know (IsKnownEnvelopeType false) comes from a newer peer and
// is stored and shown as "a message this version cannot display", keeping the
// sequence chain intact.
enum class EnvelopeType : std::uint32_t {
  kText = 1,
  kReceipt = 2,
  kContactCard = 3,
  kConfirmation = 4,
  kQueueUpdate = 5,
  kGroupControl = 6,
};

bool IsKnownEnvelopeType(EnvelopeType type) noexcept;

struct Envelope {
  Id message_id{};                // random, non-zero
  std::uint64_t seq = 0;          // >= 1
  std::optional<Hash> prev_hash;  // absent iff seq == 1
  EnvelopeType type = EnvelopeType::kText;
  std::uint64_t sent_at_ms = 0;   // sender's clock, informational
  Bytes body;                     // <= kMaxEnvelopeBodyBytes

  friend bool operator==(const Envelope&, const Envelope&) = default;
};

// Errors (kMalformed unless noted): message id all zeros; seq 0; prev_hash
// present with seq 1 or absent with seq > 1; type 0 or above 2^31-1; body longer than
// kMaxEnvelopeBodyBytes (kLimitExceeded).
Status ValidateEnvelope(const Envelope& envelope);

// Errors: kLimitExceeded "envelope is too large" if bytes.size() >
// kMaxEnvelopeBytes (checked first); kMalformed if protobuf refuses the bytes,
// the version is missing, a field has the wrong size (message id 16 bytes,
// prev_hash 32); kUnsupported if the version is not kEnvelopeVersion; then as
// ValidateEnvelope.
Result<Envelope> ParseEnvelope(ByteSpan bytes);

// Errors: as ValidateEnvelope.
Result<Bytes> SerializeEnvelope(const Envelope& envelope);

// BLAKE2b-256("rhizome/v1/envelope-digest" || serialized_envelope): the value
// the next envelope of the same sender carries as prev_hash.
Hash EnvelopeDigest(ByteSpan serialized_envelope);

}  // namespace rhizome::protocol
