#include "schema.h"

#include <array>
#include <string>
#include <string_view>

#include "rhizome/storage/profile.h"

namespace rhizome::storage {

namespace {

// kMigrations[i] takes the schema from version i to i + 1. SQL for SQLite
// 3.15.2: no UPSERT, no RETURNING, no window functions.
constexpr std::array<std::string_view, kSchemaVersion> kMigrations = {
    // 0 -> 1: the identity (at most one row) and key/value settings.
    R"sql(
CREATE TABLE identity (
  id             INTEGER PRIMARY KEY CHECK (id = 1),
  display_name   TEXT NOT NULL,
  signing_public BLOB NOT NULL,
  signing_secret BLOB NOT NULL,
  noise_public   BLOB NOT NULL,
  noise_secret   BLOB NOT NULL,
  certificate    BLOB NOT NULL
);
CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value BLOB
);
)sql",
};

}  // namespace

Status MigrateSchema(Database& db, std::int64_t from) {
  if (from < 0 || from > kSchemaVersion) {
    return Error{Errc::kInvalidArgument, "schema version out of range"};
  }
  for (std::int64_t v = from; v < kSchemaVersion; ++v) {
    auto txn = db.Begin();
    if (!txn) return txn.error();
    RHIZOME_TRY(db.Exec(kMigrations[static_cast<std::size_t>(v)]));
    RHIZOME_TRY(db.Exec("PRAGMA user_version = " + std::to_string(v + 1)));
    RHIZOME_TRY(txn->Commit());
  }
  return {};
}

Status CheckAndMigrateSchema(Database& db) {
  auto version = db.UserVersion();
  if (!version) return version.error();
  if (*version <= 0) {
    return Error{Errc::kCorrupt, "profile database is empty or has no schema"};
  }
  if (*version > kSchemaVersion) {
    return Error{Errc::kUnsupported, "profile was written by a newer version of Rhizome"};
  }
  return MigrateSchema(db, *version);
}

}  // namespace rhizome::storage
