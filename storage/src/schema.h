// Private to the storage module: the profile database schema and its
// migrations, keyed by `PRAGMA user_version`.
//
// Version 0 is an empty database (only ever seen during Create()). Migration
// N -> N+1 runs in one transaction together with `PRAGMA user_version = N+1`,
// so a crash leaves the database at N or at N+1, never in between.
// Thread safety: as Database.
#pragma once

#include "rhizome/crypto/result.h"
#include "rhizome/storage/database.h"

namespace rhizome::storage {

// Brings a database at `from` (0 <= from <= kSchemaVersion) to kSchemaVersion.
// Errors: kInvalidArgument if `from` is out of range; as Database::Exec.
Status MigrateSchema(Database& db, std::int64_t from);

// Checks the version an existing profile's database reports, then migrates.
// Errors: kCorrupt if it is 0 (an existing profile always has a schema) or
// negative; kUnsupported if newer than kSchemaVersion; as MigrateSchema.
Status CheckAndMigrateSchema(Database& db);

}  // namespace rhizome::storage
