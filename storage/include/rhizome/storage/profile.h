// The encrypted profile: one directory per identity (DESIGN §12).
//
// Layout (mode 0700 directory):
//   profile.db        SQLCipher database, keyed with a random 256-bit raw key
//   profile.key       that key, wrapped (XChaCha20-Poly1305) under
//                     Argon2id(passphrase, salt), with salt and parameters
//   profile.key.new   only during a passphrase change (see ChangePassphrase)
//   profile.sock      the daemon's Unix socket while one runs (client/src/daemon.h);
//                     Wipe removes a stale one
// The byte format of the key file is in docs/protocol/profile-key-file.md.
//
// Guarantees:
// - No cleartext: every byte of profile data is in the encrypted database.
// - Open() checks `PRAGMA cipher_version` (refuses a plain SQLite build) and
//   proves the key with a probe query before returning.
// - A wrong passphrase fails the unwrap and changes nothing.
// - ChangePassphrase() rekeys the database to a *new* random key and replaces
//   the key file crash-safely: after a crash at any point exactly the old or
//   the new passphrase opens the profile; after success the old one never does.
// - secure_delete is on (deleted rows are zeroed inside the database; see the
//   key file doc for what journals leave in freed blocks); commits are durable
//   (synchronous=EXTRA); schema migrations run by user_version on Open().
// - A Profile holds an exclusive lock (flock) on its directory while it
//   exists: a second Create/Open/Wipe of the same directory, from this or any
//   other process, fails with kIo ("profile is in use") until it is destroyed.
// - Failed Create/Open/ChangePassphrase calls leave the files as they were
//   (except for SQLite's own recovery of an interrupted transaction).
// Thread safety: a Profile is used from one thread at a time.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/pwhash.h"
#include "rhizome/crypto/result.h"
#include "rhizome/storage/database.h"

namespace rhizome::crypto {
class RandomSource;
}

namespace rhizome::storage {

inline constexpr std::string_view kDatabaseFileName = "profile.db";
inline constexpr std::string_view kKeyFileName = "profile.key";
inline constexpr std::string_view kNewKeyFileName = "profile.key.new";
inline constexpr std::string_view kSocketFileName = "profile.sock";
// Passphrases longer than this are refused (input from a person or a file).
inline constexpr std::size_t kMaxPassphraseBytes = 1024;
// A key file larger than this is not read (it is ~100 bytes).
inline constexpr std::size_t kMaxKeyFileBytes = 4096;
// The current schema version (PRAGMA user_version).
inline constexpr int kSchemaVersion = 3;

// Points at which ChangePassphrase can be made to stop, for crash tests.
enum class PasswdStep {
  kAfterNewKeyFileWritten,  // profile.key.new durable, database still on the old key
  kAfterRekey,              // database on the new key, profile.key still the old one
  kAfterRename,             // profile.key replaced, directory not yet fsynced
};

class Profile {
 public:
  Profile(Profile&&) noexcept;
  Profile& operator=(Profile&&) noexcept;
  ~Profile();

  // True if `dir` holds a key file (profile.key or profile.key.new) or a
  // database. A half-created profile (crash during Create) counts.
  static bool Exists(const std::filesystem::path& dir);

  // Creates the directory (0700; parents as needed) and a new profile in it
  // (files 0600). An existing directory must be empty (or hold only leftover
  // profile.* files); it is then set to 0700. The key file is written last:
  // it is the commit point.
  // Errors: kAlreadyExists if a profile exists and !force (with force the old
  // profile is wiped first); kInvalidArgument for an empty or too long
  // passphrase, bad params, a path that is not a directory, or a directory
  // holding other files; kIo.
  static Result<Profile> Create(const std::filesystem::path& dir, ByteSpan passphrase,
                                const crypto::Argon2idParams& params, crypto::RandomSource& rng,
                                bool force = false);

  // Unwraps the database key, opens and checks the database (cipher_version,
  // probe, PRAGMA quick_check, schema version) and migrates the schema. If a
  // passphrase change was interrupted (profile.key.new exists) both key files
  // are tried and the leftover is tidied up after a successful open.
  // Errors: kNotFound (no profile), kWrongPassphrase ("wrong passphrase or
  // damaged profile": the unwrap failed), kCorrupt (key file or database
  // damaged, missing or not matching), kUnsupported (not SQLCipher, newer
  // schema or key file format), kInvalidArgument (empty or too long
  // passphrase), kIo (including "profile is in use").
  static Result<Profile> Open(const std::filesystem::path& dir, ByteSpan passphrase);

  // New random database key, rekey, new key file (crash-safe, see above):
  // write profile.key.new (fsync), rekey the database, then close the
  // connection and prove the outcome with a fresh one (which replaces it: the
  // Database returned by db() stays the same object), fsync the directory,
  // scrub the rekey's journal (old-key pages), overwrite the old key file,
  // rename profile.key.new over profile.key, fsync the directory.
  // `crash_at` is for tests: when set, the operation stops (returns kInternal)
  // right after that step, as a crash would, leaving the files as they are;
  // the Profile should then be destroyed and the profile reopened.
  // Errors: kInvalidArgument (passphrase, params, an open transaction, or a
  // Statement of db() still alive); kIo: profile.key.new left by an
  // unfinished change (reopen first); "rekeying the database failed; the
  // passphrase is unchanged" (the old key still opens every page; the Profile
  // keeps working on a fresh connection); "rekeying the database failed;
  // close and reopen the profile" (neither key opens it now: db() is closed,
  // every call on it fails with kIo, and the next Open() tries both key
  // files); other I/O failures: nothing changed if before the rekey,
  // otherwise the next Open() finishes the change; kInternal (out of memory,
  // simulated crash).
  Status ChangePassphrase(ByteSpan new_passphrase, const crypto::Argon2idParams& params,
                          crypto::RandomSource& rng,
                          const PasswdStep* crash_at = nullptr);

  // Overwrites the key file(s) with random bytes and fsyncs, then overwrites
  // and removes the database and its journals, then removes the directory if
  // nothing else is in it (files that are not the profile's are left alone).
  // Best effort on flash storage. The profile must not be open (see lock).
  // Errors: kNotFound, kIo (also "profile is in use").
  static Status Wipe(const std::filesystem::path& dir, crypto::RandomSource& rng);

  Database& db();
  const std::filesystem::path& dir() const;

 private:
  struct Impl;
  explicit Profile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rhizome::storage
