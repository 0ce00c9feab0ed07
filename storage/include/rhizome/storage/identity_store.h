// The profile's own identity, kept in the encrypted database (table `identity`,
// at most one row). Secret keys are read back into wiped memory.
// Thread safety: as Database.
#pragma once

#include "rhizome/crypto/result.h"
#include "rhizome/protocol/identity.h"
#include "rhizome/storage/database.h"

namespace rhizome::storage {

// Errors: kAlreadyExists if the profile already has an identity;
// kInvalidArgument if the identity is inconsistent (bad display name, key
// sizes, or a certificate that does not verify); kIo.
Status SaveIdentity(Database& db, const protocol::Identity& identity);

// Errors: kNotFound if none; kCorrupt if a stored key has the wrong size, a
// public key does not match its secret, the display name is invalid or the
// certificate does not verify; kIo.
Result<protocol::Identity> LoadIdentity(Database& db);

}  // namespace rhizome::storage
