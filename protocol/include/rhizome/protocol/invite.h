// Invites (DESIGN §6): the payload one person hands another out of band, in
// binary (protobuf) form and as a pasteable text code. Field by field and the
// code grammar in docs/protocol/invite.md.
//
//   invite code = "rhizome-invite:" base32(payload || checksum)
//   payload     = the protobuf Invite (at most kMaxInviteBytes)
//   checksum    = BLAKE2b-256("rhizome/v1/invite-code-checksum" || payload)[0:4]
//
// The code is case-insensitive (the uppercase form suits QR alphanumeric
// mode) and ASCII whitespace anywhere in it is ignored, so wrapped codes still
// parse. The checksum catches typos; it is not a security measure.
//
// SECURITY: an invite holds the invite secret: whoever has the code can make a
// contact request. The text form and the serialised bytes therefore contain a
// secret; callers keep them out of logs. invite_secret itself lives in
// SecretBytes. Expiry and single use are checked by the inviter, not here.
//
// Invariant: an Invite returned by ParseInvite/ParseInviteCode has passed
// ValidateInvite. Thread safety: value types and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/wire_types.h"

namespace rhizome::protocol {

// The invite format version this build writes and reads.
inline constexpr std::uint32_t kInviteVersion = 1;
// Largest binary invite, checked before decoding.
inline constexpr std::size_t kMaxInviteBytes = 2048;
// Longest invite code text (including any whitespace), checked first.
inline constexpr std::size_t kMaxInviteCodeChars = 4096;
inline constexpr std::string_view kInviteCodeScheme = "rhizome-invite:";
inline constexpr std::size_t kInviteChecksumBytes = 4;
inline constexpr std::size_t kInviteSecretBytes = 32;
inline constexpr std::size_t kInviteFingerprintBytes = 16;

struct Invite {
  PublicKey invite_key{};            // X25519 public half of the one-time invite key pair
  crypto::SecretBytes invite_secret;  // 32 bytes
  ByteArray<kInviteFingerprintBytes> fingerprint{};  // H32(invite_secret || identity_pk)[0:16]
  std::uint64_t expires_at = 0;      // Unix seconds, non-zero
  RelayAddress relay;                // where the request queue lives
  Id request_queue_id{};             // the request queue's sender id
  bool multi_use = false;
  std::vector<DirectAddress> direct_addresses;  // 0..kMaxDirectAddresses; empty by default

  Invite Clone() const;
};

// Errors (kMalformed unless noted): invite key, secret, fingerprint or queue
// id all zeros; secret not 32 bytes; expires_at 0; bad relay address (its own
// errors, including kUnsupported for no common version); bad direct address;
// more than kMaxDirectAddresses (kLimitExceeded).
Status ValidateInvite(const Invite& invite);

// The per-invite fingerprint (DESIGN §6): the first 16 bytes of
// BLAKE2b-256(invite_secret || identity_public_key). Invites from one person
// differ in their secrets, so their fingerprints cannot be linked; the
// acceptor checks the inviter's card against it (first_contact.h).
// Errors: kInvalidArgument if invite_secret is not kInviteSecretBytes or the
// identity key is not 32 bytes.
Result<ByteArray<kInviteFingerprintBytes>> InviteFingerprint(ByteSpan invite_secret,
                                                             ByteSpan identity_public_key);

// True iff the invite has expired at `now_unix_seconds`.
bool InviteExpired(const Invite& invite, std::uint64_t now_unix_seconds) noexcept;

// Binary form. Errors: kLimitExceeded "invite is too large" if bytes.size() >
// kMaxInviteBytes (checked first); kMalformed if protobuf refuses the bytes,
// the version is missing, a field has the wrong size or the relay is missing;
// kUnsupported if the version is not kInviteVersion; then as ValidateInvite.
Result<Invite> ParseInvite(ByteSpan bytes);

// Errors: as ValidateInvite; kLimitExceeded if the encoding exceeds kMaxInviteBytes.
Result<Bytes> SerializeInvite(const Invite& invite);

// Text form. Errors: kLimitExceeded if text is longer than kMaxInviteCodeChars;
// kMalformed "not a rhizome-invite: code", "invite code is bad base32",
// "invite code checksum mismatch" (a typo); then as ParseInvite.
Result<Invite> ParseInviteCode(std::string_view text);

// The canonical (lowercase) text form. Errors: as SerializeInvite.
Result<std::string> FormatInviteCode(const Invite& invite);

}  // namespace rhizome::protocol
