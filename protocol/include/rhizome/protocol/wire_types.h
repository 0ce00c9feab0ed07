// Types, sizes and limits shared by Rhizome's wire formats
// (docs/protocol/README.md is the index of the formats).
//
// Conventions every parser in this module follows:
// - A named size limit is checked on the raw input before any decoding.
// - Fixed-size fields must have exactly their size (ids 16 bytes, keys and
//   hashes 32, signatures 64); an all-zero id or key is refused, because that
//   is what an unfilled field looks like.
// - Errors are kMalformed (does not parse or validate), kUnsupported (a newer
//   version or an unknown variant) or kLimitExceeded (a named size or count
//   limit), each with a static message that never contains input bytes.
// - Unknown protobuf fields are ignored and dropped: parsed values are copied
//   into the plain structs of this module, and only those are ever serialised
//   again (docs/protocol/unknown-fields-and-versions.md).
// Thread safety: value types and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"

namespace rhizome::protocol {

inline constexpr std::size_t kIdBytes = 16;         // random ids: messages, queues, boards, corr ids
inline constexpr std::size_t kKeyBytes = 32;        // X25519/Ed25519 public keys, symmetric keys
inline constexpr std::size_t kHashBytes = 32;       // BLAKE2b-256 digests
inline constexpr std::size_t kMacBytes = 32;        // keyed BLAKE2b-256 authorizers
inline constexpr std::size_t kSignatureBytes = 64;  // Ed25519 signatures

using Id = ByteArray<kIdBytes>;
using PublicKey = ByteArray<kKeyBytes>;
using Hash = ByteArray<kHashBytes>;
using Mac = ByteArray<kMacBytes>;
using Signature = ByteArray<kSignatureBytes>;

// Longest host name (a DNS name's maximum).
inline constexpr std::size_t kMaxHostBytes = 253;
// Most entries in a list of wire versions.
inline constexpr std::size_t kMaxVersions = 8;
// Most direct addresses in one invite or contact card.
inline constexpr std::size_t kMaxDirectAddresses = 4;

// A host and port for a direct peer link (Noise XK).
struct DirectAddress {
  std::string host;  // canonical form (see NormalizeHost)
  std::uint16_t port = 0;

  friend bool operator==(const DirectAddress&, const DirectAddress&) = default;
};

// Checks a host and returns its canonical form. Accepted:
// - a DNS name: 1..253 bytes, dot-separated labels of 1..63 letters, digits and
//   '-', not starting or ending with '-', last label not all digits; canonical
//   form is lowercase;
// - a dotted-quad IPv4 address, four decimal numbers 0..255 without leading zeros;
// - an IPv6 address (without brackets, no zone id); canonical form per RFC 5952.
// Errors: kMalformed "bad host".
Result<std::string> NormalizeHost(std::string_view host);

// True iff `host` is accepted by NormalizeHost and already canonical.
bool IsCanonicalHost(std::string_view host);

// Errors: kMalformed if the host is not canonical (see NormalizeHost) or the port is 0.
Status ValidateDirectAddress(const DirectAddress& address);

// Longest text form of a direct address: "[" host "]:" port.
inline constexpr std::size_t kMaxDirectAddressTextBytes = kMaxHostBytes + 8;

// Parses what a person types for a direct address: "host:port", with an IPv6
// host in brackets ("[::1]:7000"). The host is normalised (NormalizeHost).
// Errors: kLimitExceeded above kMaxDirectAddressTextBytes; kMalformed "direct
// address must be HOST:PORT" (no port, a port that is not 1..65535), "bad host".
Result<DirectAddress> ParseDirectAddress(std::string_view text);

// The text form ParseDirectAddress reads back (IPv6 hosts in brackets).
std::string FormatDirectAddress(const DirectAddress& address);

// A list of wire versions must have 1..kMaxVersions entries, each >= 1,
// strictly ascending. Errors: kMalformed (empty, a 0, not strictly
// ascending); kLimitExceeded (more than kMaxVersions entries); kUnsupported
// "no common wire version" if none is in kSupportedWireVersions (version.h).
Status ValidateVersionList(std::span<const std::uint16_t> versions);

// True iff every byte is zero.
bool IsAllZero(ByteSpan bytes) noexcept;

}  // namespace rhizome::protocol
