// The relay's own keys, kept in its data directory (file `relay.keys`, 0600):
// - the Noise static X25519 key clients pin (in the relay address);
// - the Ed25519 signing key whose public half is in the address and which
//   signs key statements (DESIGN §9). The operator may move it offline after
//   setup (docs/relay.md); `rotate` needs it back;
// - the access key (PSK) of a closed relay, or none for an open relay.
// None of these are user identities: the relay holds no user keys.
//
// File layout (all fixed sizes):
//   "RHZRKEY1" (8) || noise_secret (32) || signing_seed (32) || u8 psk_len (0|32) || psk
#pragma once

#include <filesystem>
#include <string>

#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/crypto/sign.h"

namespace rhizome::relay {

inline constexpr const char* kRelayKeysFileName = "relay.keys";
inline constexpr std::size_t kMaxRelayKeysFileBytes = 256;

struct RelayKeys {
  crypto::X25519KeyPair noise;
  crypto::Ed25519KeyPair signing;
  crypto::SecretBytes psk;  // 32 bytes; all zeros = open relay
  bool closed() const;
};

// Reads data_dir/relay.keys. Errors: kNotFound, kCorrupt (size, magic), kIo.
Result<RelayKeys> LoadRelayKeys(const std::filesystem::path& data_dir);

// Loads the keys, or on first start creates the directory (0700) and fresh
// keys (with a random access key if `closed`). `created` tells which happened.
// Errors: as LoadRelayKeys; kIo on write.
Result<RelayKeys> LoadOrCreateRelayKeys(const std::filesystem::path& data_dir, bool closed,
                                        crypto::RandomSource& rng, bool* created);

// The pasteable address (protocol/relay_address.h) for these keys at host:port.
// Errors: kMalformed for a bad host or port.
Result<std::string> FormatAddress(const RelayKeys& keys, const std::string& host,
                                  std::uint16_t port);

}  // namespace rhizome::relay
