#include "rhizome/storage/identity_store.h"

#include <algorithm>

#include "rhizome/crypto/secret.h"

namespace rhizome::storage {

// Stored columns (schema v1, table `identity`, the single row id = 1):
//   display_name    TEXT  the validated display name
//   signing_public  BLOB  32-byte Ed25519 public key
//   signing_secret  BLOB  32-byte Ed25519 seed (the 64-byte libsodium secret
//                         key is seed || public key, rebuilt on load)
//   noise_public    BLOB  32-byte X25519 public key
//   noise_secret    BLOB  32-byte X25519 secret key
//   certificate     BLOB  64-byte device certificate (protocol/identity.h)
// On load every public key is recomputed from its secret and compared, and the
// certificate is verified, so a damaged row is reported, never used.

Status SaveIdentity(Database& db, const protocol::Identity& identity) {
  RHIZOME_TRY(protocol::ValidateDisplayName(identity.display_name));
  if (identity.signing.secret_key.size() != crypto::kEd25519SecretKeyBytes ||
      identity.noise.secret_key.size() != crypto::kX25519Bytes) {
    return Error{Errc::kInvalidArgument, "identity has a secret key of the wrong size"};
  }
  if (!protocol::VerifyDeviceCertificate(identity.signing.public_key, identity.noise.public_key,
                                         identity.certificate)) {
    return Error{Errc::kInvalidArgument, "identity's device certificate does not verify"};
  }
  auto stmt = db.Prepare(
      "INSERT INTO identity (id, display_name, signing_public, signing_secret, noise_public, "
      "noise_secret, certificate) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)");
  if (!stmt) return stmt.error();
  stmt->Bind(1, std::string_view(identity.display_name))
      .Bind(2, ByteSpan(identity.signing.public_key))
      .Bind(3, identity.signing.secret_key.expose().first(crypto::kEd25519SeedBytes))
      .Bind(4, ByteSpan(identity.noise.public_key))
      .Bind(5, identity.noise.secret_key.expose())
      .Bind(6, ByteSpan(identity.certificate));
  auto run = stmt->Run();
  if (!run) {
    if (run.error().code == Errc::kAlreadyExists) {
      return Error{Errc::kAlreadyExists, "the profile already has an identity"};
    }
    return run.error();
  }
  return {};
}

Result<protocol::Identity> LoadIdentity(Database& db) {
  auto stmt = db.Prepare(
      "SELECT display_name, signing_public, signing_secret, noise_public, noise_secret, "
      "certificate FROM identity WHERE id = 1");
  if (!stmt) return stmt.error();
  auto row = stmt->Step();
  if (!row) return row.error();
  if (!*row) return Error{Errc::kNotFound, "the profile has no identity yet"};

  const Error damaged{Errc::kCorrupt, "stored identity is damaged"};
  const ByteSpan signing_public = stmt->ColumnBlob(1);
  const ByteSpan signing_seed = stmt->ColumnBlob(2);
  const ByteSpan noise_public = stmt->ColumnBlob(3);
  const ByteSpan noise_secret = stmt->ColumnBlob(4);
  const ByteSpan certificate = stmt->ColumnBlob(5);
  if (signing_public.size() != crypto::kEd25519PublicKeyBytes ||
      signing_seed.size() != crypto::kEd25519SeedBytes ||
      noise_public.size() != crypto::kX25519Bytes || noise_secret.size() != crypto::kX25519Bytes ||
      certificate.size() != crypto::kEd25519SignatureBytes) {
    return damaged;
  }

  protocol::Identity id;
  id.display_name = std::string(stmt->ColumnText(0));
  if (!protocol::ValidateDisplayName(id.display_name)) return damaged;

  auto signing = crypto::Ed25519FromSeed(signing_seed);
  if (!signing) return damaged;
  auto noise = crypto::X25519FromSecret(noise_secret);
  if (!noise) return damaged;
  if (!std::equal(signing_public.begin(), signing_public.end(), signing->public_key.begin()) ||
      !std::equal(noise_public.begin(), noise_public.end(), noise->public_key.begin())) {
    return damaged;
  }
  id.signing = std::move(*signing);
  id.noise = std::move(*noise);
  std::copy(certificate.begin(), certificate.end(), id.certificate.begin());
  if (!protocol::VerifyDeviceCertificate(id.signing.public_key, id.noise.public_key,
                                         id.certificate)) {
    return damaged;
  }
  return id;
}

}  // namespace rhizome::storage
