// Relay key statements (DESIGN §9): how a relay replaces the Noise static key
// or the access PSK pinned in its address, without asking every user to paste
// a new address. Byte by byte in docs/protocol/relay-key-statement.md.
//
// The relay's offline Ed25519 signing key (named in the address) signs a
// statement "from serial N on, my Noise static key is K and my access key is
// P". During a transition the relay accepts handshakes under its old and its
// new static key and pushes the statement after every handshake (a
// RelayReply with no corr id, relay_messages.h); a client verifies it against
// the signing key of the address it holds and, if the serial is above the
// last one it followed, replaces the key and PSK in its stored address.
//
// Canonical encoding (the signature covers everything before it):
//   "rhizome/v1/relay-key-statement" (30 bytes, the context and version)
//   || u64be serial (>= 1) || noise_key (32, not all zero)
//   || u8 psk_len (0 = open relay | 32) || psk (psk_len bytes, not all zero)
//   || u64be valid_from (Unix seconds: when the relay began accepting the key)
//   || signature (64, Ed25519 by the address's signing key)
// 143 bytes for an open relay, 175 for a closed one; nothing may follow.
//
// SECURITY:
// - The statement carries the new PSK in clear: it travels only inside the
//   encrypted relay channel (or in the relay's 0600 key file), never in a log
//   or an address book export. Encoded statements are SecretBytes.
// - Anyone who holds the old address and connects during a transition learns
//   the new PSK: a PSK change meant to exclude someone must not have a
//   transition (docs/relay.md "Rotating keys").
// - Clients order statements by serial only, never by clock (client clocks
//   are often wrong); a serial not above the last followed one is ignored, so
//   an old statement cannot roll a client back to a retired key.
//
// Thread safety: value types and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/crypto/sign.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/wire_types.h"

namespace rhizome::protocol {

inline constexpr std::string_view kRelayKeyStatementContext = "rhizome/v1/relay-key-statement";
// Encoded sizes: open relay (no PSK) and closed relay; the largest is the
// limit checked before anything else is parsed.
inline constexpr std::size_t kRelayKeyStatementOpenBytes =
    kRelayKeyStatementContext.size() + 8 + kKeyBytes + 1 + 8 + kSignatureBytes;
inline constexpr std::size_t kMaxRelayKeyStatementBytes = kRelayKeyStatementOpenBytes + kRelayPskBytes;

struct RelayKeyStatement {
  std::uint64_t serial = 0;   // >= 1, strictly increasing per relay
  PublicKey noise_key{};      // the relay's Noise static public key from now on
  crypto::SecretBytes psk;    // empty (open relay) or 32 bytes, never all zeros
  std::uint64_t valid_from = 0;  // Unix seconds; informative, never compared to a clock
  Signature signature{};

  // An explicit deep copy (psk is a secret and is never copied implicitly).
  RelayKeyStatement Clone() const;
};

// Field rules: serial >= 1, noise_key not all zero, psk empty or 32 non-zero
// bytes. Errors: kMalformed naming the broken rule.
Status ValidateRelayKeyStatement(const RelayKeyStatement& statement);

// The bytes the signature covers (the canonical encoding without the
// signature). Holds the PSK: wipe it after use (crypto::Wipe).
// Precondition: psk is empty or 32 bytes (ValidateRelayKeyStatement).
Bytes RelayKeyStatementMessage(const RelayKeyStatement& statement);

// Signs `statement` (all fields but the signature set) with the relay's
// signing key pair, filling in statement.signature.
// Errors: kMalformed from ValidateRelayKeyStatement; kInvalidArgument if the
// key pair holds no 64-byte secret key (signing key moved offline).
Status SignRelayKeyStatement(RelayKeyStatement& statement,
                             const crypto::Ed25519KeyPair& signing_key);

// Errors: kMalformed (ValidateRelayKeyStatement); kInvalidArgument if
// relay_signing_key is not 32 bytes; kAuthenticationFailed if the signature by
// relay_signing_key does not verify.
Status VerifyRelayKeyStatement(const RelayKeyStatement& statement, ByteSpan relay_signing_key);

// The canonical encoding (layout above).
// Errors: kMalformed from ValidateRelayKeyStatement.
Result<crypto::SecretBytes> EncodeRelayKeyStatement(const RelayKeyStatement& statement);

// Strict parser of the canonical encoding. Checks sizes and field rules; does
// NOT check the signature (VerifyRelayKeyStatement / ApplyKeyStatement do).
// Errors: kLimitExceeded if longer than kMaxRelayKeyStatementBytes; kMalformed
// for a wrong context, a size that matches neither form, a psk_len other than
// 0 or 32, a field rule, or trailing bytes.
Result<RelayKeyStatement> ParseRelayKeyStatement(ByteSpan bytes);

// What a client does with a statement its relay pushed: verifies everything,
// then returns `address` with the statement's Noise key and PSK (host, port,
// signing key and versions unchanged). `followed_serial` is the serial of the
// last statement the client followed for this relay (0 = none); the caller
// stores statement.serial with the returned address. Nothing is returned
// unless every check passed.
// Errors, in the order checked:
//   kInvalidArgument  `address` is not a valid relay address;
//   kMalformed        a field rule of the statement;
//   kAuthenticationFailed  not signed by address.signing_key (a forgery or
//                     another relay's statement: ignore it, keep the address);
//   kAlreadyExists    serial <= followed_serial (replayed or older: ignore it;
//                     no rollback).
Result<RelayAddress> ApplyKeyStatement(const RelayAddress& address,
                                       const RelayKeyStatement& statement,
                                       std::uint64_t followed_serial);

}  // namespace rhizome::protocol
