#include "key_file.h"

#include <algorithm>

#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/random.h"

namespace rhizome::storage {

namespace {

void PutU16(std::uint8_t* out, std::uint16_t v) {
  out[0] = static_cast<std::uint8_t>(v >> 8);
  out[1] = static_cast<std::uint8_t>(v);
}

void PutU64(std::uint8_t* out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    *out++ = static_cast<std::uint8_t>(v >> (8 * i));
  }
}

std::uint16_t GetU16(const std::uint8_t* in) {
  return static_cast<std::uint16_t>((in[0] << 8) | in[1]);
}

std::uint64_t GetU64(const std::uint8_t* in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | in[i];
  return v;
}

ByteArray<kKeyFileChecksumBytes> Checksum(ByteSpan body) { return crypto::Blake2b256(body); }

}  // namespace

ByteArray<kKeyFileHeaderBytes> KeyFileHeader(const KeyFile& file) {
  ByteArray<kKeyFileHeaderBytes> h{};
  std::copy(kKeyFileMagic.begin(), kKeyFileMagic.end(), h.begin());
  PutU16(h.data() + kKeyFileVersionOffset, kKeyFileVersion);
  PutU64(h.data() + kKeyFileOpsOffset, file.params.ops_limit);
  PutU64(h.data() + kKeyFileMemOffset, file.params.mem_limit);
  std::copy(file.salt.begin(), file.salt.end(), h.begin() + kKeyFileSaltOffset);
  std::copy(file.nonce.begin(), file.nonce.end(), h.begin() + kKeyFileNonceOffset);
  return h;
}

Bytes SerializeKeyFile(const KeyFile& file) {
  Bytes out;
  out.reserve(kKeyFileBytes);
  Append(out, KeyFileHeader(file));
  Append(out, file.wrapped_key);
  Append(out, Checksum(out));
  return out;
}

Result<KeyFile> ParseKeyFile(ByteSpan bytes) {
  // SECURITY: every check here is cheap and runs before any Argon2id, so a
  // damaged or hostile file costs nothing to reject.
  if (bytes.size() > kMaxKeyFileBytes) {
    return Error{Errc::kCorrupt, "profile key file is too large"};
  }
  if (bytes.size() < kKeyFileVersionOffset + 2) {
    return Error{Errc::kCorrupt, "profile key file is truncated"};
  }
  if (!std::equal(kKeyFileMagic.begin(), kKeyFileMagic.end(), bytes.begin())) {
    return Error{Errc::kCorrupt, "not a profile key file (bad magic)"};
  }
  const std::uint16_t version = GetU16(bytes.data() + kKeyFileVersionOffset);
  if (version == 0) return Error{Errc::kCorrupt, "profile key file has version 0"};
  if (version != kKeyFileVersion) {
    return Error{Errc::kUnsupported, "profile key file format is newer than this program"};
  }
  if (bytes.size() < kKeyFileBytes) {
    return Error{Errc::kCorrupt, "profile key file is truncated"};
  }
  if (bytes.size() > kKeyFileBytes) {
    return Error{Errc::kCorrupt, "profile key file has trailing bytes"};
  }
  const auto expected = Checksum(bytes.first(kKeyFileChecksumOffset));
  if (!std::equal(expected.begin(), expected.end(), bytes.begin() + kKeyFileChecksumOffset)) {
    return Error{Errc::kCorrupt, "profile key file is damaged (checksum mismatch)"};
  }
  KeyFile file;
  file.params.ops_limit = GetU64(bytes.data() + kKeyFileOpsOffset);
  file.params.mem_limit = GetU64(bytes.data() + kKeyFileMemOffset);
  // SECURITY: bound the work a file can ask of us before anyone runs Argon2id.
  if (!file.params.Validate()) {
    return Error{Errc::kCorrupt, "profile key file has out-of-range Argon2id parameters"};
  }
  auto at = [&](std::size_t offset) { return bytes.begin() + static_cast<std::ptrdiff_t>(offset); };
  std::copy(at(kKeyFileSaltOffset), at(kKeyFileNonceOffset), file.salt.begin());
  std::copy(at(kKeyFileNonceOffset), at(kKeyFileHeaderBytes), file.nonce.begin());
  std::copy(at(kKeyFileHeaderBytes), at(kKeyFileChecksumOffset), file.wrapped_key.begin());
  return file;
}

Result<KeyFile> WrapDatabaseKey(const crypto::SecretBytes& database_key, ByteSpan passphrase,
                                const crypto::Argon2idParams& params, crypto::RandomSource& rng) {
  if (database_key.size() != kKeyFileWrappedKeyBytes) {
    return Error{Errc::kInvalidArgument, "database key must be 32 bytes"};
  }
  RHIZOME_TRY(params.Validate());
  KeyFile file;
  file.params = params;
  rng.Fill(file.salt);
  rng.Fill(file.nonce);
  crypto::StackSecret<crypto::kAeadKeyBytes> kek;
  RHIZOME_TRY(crypto::Argon2id(passphrase, file.salt, params, kek.expose_mut()));
  const auto header = KeyFileHeader(file);
  RHIZOME_TRY(crypto::XChaChaEncrypt(kek.expose(), file.nonce, header, database_key.expose(),
                                     file.wrapped_key));
  return file;
}

Result<crypto::SecretBytes> UnwrapDatabaseKey(const KeyFile& file, ByteSpan passphrase) {
  if (!file.params.Validate()) {
    return Error{Errc::kCorrupt, "profile key file has out-of-range Argon2id parameters"};
  }
  crypto::StackSecret<crypto::kAeadKeyBytes> kek;
  RHIZOME_TRY(crypto::Argon2id(passphrase, file.salt, file.params, kek.expose_mut()));
  const auto header = KeyFileHeader(file);
  crypto::SecretBytes key(kKeyFileWrappedKeyBytes);
  if (!crypto::XChaChaDecrypt(kek.expose(), file.nonce, header, file.wrapped_key,
                              key.expose_mut())) {
    return Error{Errc::kWrongPassphrase, "wrong passphrase or damaged profile"};
  }
  return key;
}

}  // namespace rhizome::storage
