// Relay addresses (DESIGN §5, §9): what a client needs to open a
// Noise_NKpsk0 channel to a relay, and its pasteable text form. Grammar and
// examples: docs/protocol/relay-address.md.
//
//   rhizome-relay://<keys>@<host>:<port>?v=<versions>[&psk=<psk>]
//
//   keys     = base32(noise_key (32) || signing_key (32) || checksum (4)), 109 characters,
//              checksum = BLAKE2b-256("rhizome/v1/relay-address-checksum" || noise_key ||
//                                     signing_key)[0:4]
//   host     = DNS name | dotted IPv4 | "[" IPv6 "]"
//   port     = 1..65535, decimal, no leading zeros
//   versions = decimal wire versions, ascending, comma-separated ("1" or "1,2")
//   psk      = base32(32-byte access key), 52 characters; absent for an open relay
//
// The checksum covers only the keys: a typo in a key is caught before it can
// look like an attack, while an operator may still edit host and port by hand.
// SECURITY: the address pins the relay's Noise static key; the psk is the
// relay's access credential (all zeros = open relay, written as no psk).
//
// Thread safety: value types and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/protocol/wire_types.h"

namespace rhizome::protocol {

inline constexpr std::string_view kRelayAddressScheme = "rhizome-relay://";
// Longest accepted relay address text, checked before anything else.
inline constexpr std::size_t kMaxRelayAddressChars = 512;
inline constexpr std::size_t kRelayAddressChecksumBytes = 4;
inline constexpr std::size_t kRelayPskBytes = 32;

struct RelayAddress {
  PublicKey noise_key{};    // current Noise static X25519 key (pinned)
  PublicKey signing_key{};  // offline Ed25519 key that signs key statements
  std::string host;         // canonical (NormalizeHost)
  std::uint16_t port = 0;
  std::vector<std::uint16_t> versions;  // ascending
  // Access key: empty for an open relay (the Noise psk is then 32 zero bytes),
  // else 32 bytes, never all zero.
  crypto::SecretBytes psk;

  // An explicit deep copy (psk is a secret and is never copied implicitly).
  RelayAddress Clone() const;
};

// Checks every field: keys non-zero, signing_key a strict Ed25519 key, host
// canonical, port non-zero, versions (ValidateVersionList), psk size.
// Errors: kMalformed; kLimitExceeded / kUnsupported from ValidateVersionList.
Status ValidateRelayAddress(const RelayAddress& address);

// Parses the text form. ASCII whitespace anywhere is ignored (addresses get
// wrapped when pasted); the scheme and base32 are case-insensitive.
// Errors: kLimitExceeded if text is longer than kMaxRelayAddressChars;
// kMalformed on any syntax error, a bad checksum ("relay address checksum
// mismatch"), a repeated or unknown parameter, a bad host or port;
// kUnsupported if no listed version is spoken by this build.
Result<RelayAddress> ParseRelayAddress(std::string_view text);

// The canonical text form (lowercase; IPv6 hosts in brackets; v before psk).
// Errors: as ValidateRelayAddress.
Result<std::string> FormatRelayAddress(const RelayAddress& address);

// The 4-byte checksum of the text form's key block.
ByteArray<kRelayAddressChecksumBytes> RelayAddressChecksum(const PublicKey& noise_key,
                                                           const PublicKey& signing_key);

}  // namespace rhizome::protocol
