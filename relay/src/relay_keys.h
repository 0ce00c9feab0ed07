// The relay's own keys, kept in its data directory (file `relay.keys`, 0600):
// - the Noise static X25519 key clients pin (in the relay address);
// - the Ed25519 signing key whose public half is in the address and which
//   signs key statements (DESIGN §9). The file may hold only its public half
//   when the operator keeps the secret offline; `rotate` needs it back;
// - the access key (PSK) of a closed relay, or none for an open relay;
// - after a `rotate` (relay/src/rotate.h): the previous Noise key and PSK,
//   accepted until the transition ends, and the signed statement announcing
//   the current ones (protocol/relay_key_statement.h).
// None of these are user identities: the relay holds no user keys.
//
// File layout, version 2 (written by this build; big-endian integers):
//   "RHZRKEY2" (8) || noise_secret (32)
//   || u8 signing_form (1 = secret seed follows, 2 = public key only) || 32 bytes
//   || u8 psk_len (0|32) || psk
//   || u8 has_previous (0|1)
//      [ || prev_noise_secret (32) || u8 prev_psk_len (0|32) || prev_psk
//        || u64 transition_ends (Unix seconds) ]
//   || u16 statement_len (0 = none, else 143|175) || statement (canonical encoding)
// Version 1 (still read; never written):
//   "RHZRKEY1" (8) || noise_secret (32) || signing_seed (32) || u8 psk_len (0|32) || psk
// A statement in the file must verify under the signing key and name the
// current Noise key and PSK, else the file counts as damaged.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/crypto/sign.h"
#include "rhizome/protocol/relay_key_statement.h"

namespace rhizome::relay {

inline constexpr const char* kRelayKeysFileName = "relay.keys";
// Largest relay.keys accepted (a v2 file is at most 357 bytes).
inline constexpr std::size_t kMaxRelayKeysFileBytes = 512;

// The keys a rotation replaced, accepted until transition_ends.
struct PreviousRelayKeys {
  crypto::X25519KeyPair noise;
  crypto::SecretBytes psk;  // 32 bytes; all zeros = open relay
  std::uint64_t transition_ends = 0;  // Unix seconds; accepted while now < transition_ends
};

struct RelayKeys {
  crypto::X25519KeyPair noise;
  // secret_key is empty when the file holds only the public half (offline).
  crypto::Ed25519KeyPair signing;
  crypto::SecretBytes psk;  // 32 bytes; all zeros = open relay
  std::optional<PreviousRelayKeys> previous;
  // The latest statement; its noise_key and psk are the current ones.
  std::optional<protocol::RelayKeyStatement> statement;

  bool closed() const;
  bool has_signing_secret() const;
};

// Reads data_dir/relay.keys (version 1 or 2). Errors: kNotFound, kCorrupt
// (size, magic, a field, a statement that does not verify or does not match
// the current keys), kIo.
Result<RelayKeys> LoadRelayKeys(const std::filesystem::path& data_dir);

// Writes data_dir/relay.keys in version 2 atomically: a temporary file (0600)
// written and fsynced, renamed over relay.keys, then the directory fsynced. A
// crash at any point leaves either the old or the new file.
// Errors: kInvalidArgument if a key or PSK has the wrong size; kIo.
Status StoreRelayKeys(const std::filesystem::path& data_dir, const RelayKeys& keys);

// Loads the keys, or on first start creates the directory (0700) and fresh
// keys (with a random access key if `closed`). `created` tells which happened.
// Errors: as LoadRelayKeys; kIo on write.
Result<RelayKeys> LoadOrCreateRelayKeys(const std::filesystem::path& data_dir, bool closed,
                                        crypto::RandomSource& rng, bool* created);

// The static keys the relay's handshakes accept at Unix time `now`: the
// current key, then the previous one while its transition runs. The previous
// key is offered only if its PSK equals the current one: a SecureSession takes
// one PSK for all its static keys, so a PSK change has no transition (rotate
// refuses one). Pointers into `keys`.
std::vector<const crypto::X25519KeyPair*> HandshakeStatics(const RelayKeys& keys,
                                                           std::uint64_t now);

// The pasteable address (protocol/relay_address.h) for these keys at host:port.
// Errors: kMalformed for a bad host or port.
Result<std::string> FormatAddress(const RelayKeys& keys, const std::string& host,
                                  std::uint16_t port);

}  // namespace rhizome::relay
