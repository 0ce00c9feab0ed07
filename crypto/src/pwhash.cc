#include "rhizome/crypto/pwhash.h"

#include <sodium.h>

namespace rhizome::crypto {

static_assert(crypto_pwhash_SALTBYTES == kArgon2SaltBytes);

Argon2idParams Argon2idParams::Interactive() {
  return {crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE, crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE};
}
Argon2idParams Argon2idParams::Moderate() {
  return {crypto_pwhash_argon2id_OPSLIMIT_MODERATE, crypto_pwhash_argon2id_MEMLIMIT_MODERATE};
}
Argon2idParams Argon2idParams::Sensitive() {
  return {crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE, crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE};
}

Result<Argon2idParams> Argon2idParams::FromName(std::string_view name) {
  if (name == "interactive") return Interactive();
  if (name == "moderate") return Moderate();
  if (name == "sensitive") return Sensitive();
  return Error{Errc::kInvalidArgument, "unknown key-derivation cost (use interactive, moderate or sensitive)"};
}

Status Argon2idParams::Validate() const {
  if (ops_limit < crypto_pwhash_argon2id_OPSLIMIT_MIN || ops_limit > kArgon2MaxOpsLimit ||
      mem_limit < 8192 || mem_limit > kArgon2MaxMemLimit) {
    return Error{Errc::kInvalidArgument, "Argon2id parameters out of the accepted range"};
  }
  return {};
}

Status Argon2id(ByteSpan passphrase, ByteSpan salt, const Argon2idParams& params,
                MutableByteSpan out) {
  RHIZOME_TRY(params.Validate());
  if (salt.size() != kArgon2SaltBytes || out.size() < 16 || out.size() > 64) {
    return Error{Errc::kInvalidArgument, "Argon2id: wrong salt or output size"};
  }
  if (crypto_pwhash(out.data(), out.size(), reinterpret_cast<const char*>(passphrase.data()),
                    passphrase.size(), salt.data(), params.ops_limit,
                    static_cast<std::size_t>(params.mem_limit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Error{Errc::kInternal, "Argon2id failed (out of memory?)"};
  }
  return {};
}

}  // namespace rhizome::crypto
