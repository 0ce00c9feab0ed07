#include "rhizome/storage/profile.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "database_internal.h"
#include "file_util.h"
#include "key_file.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/secret.h"
#include "schema.h"

namespace rhizome::storage {

namespace fs = std::filesystem;

namespace {

constexpr Error kWrongPassphraseError{Errc::kWrongPassphrase,
                                      "wrong passphrase or damaged profile"};
// Every file a profile owns starts with this (see Paths).
constexpr std::string_view kProfileFilePrefix = "profile.";
constexpr Error kSimulatedCrash{Errc::kInternal, "simulated crash (test hook)"};

struct Paths {
  fs::path dir, db, key, key_new;
  // Side files: SQLite's journals (only -journal is used; -wal/-shm are listed
  // so Wipe removes them should an older build or another tool have made
  // them) and temp files of interrupted durable writes.
  std::vector<fs::path> key_side_files, db_side_files;
};

fs::path NormalizeDir(const fs::path& dir) {
  fs::path d = dir.lexically_normal();
  if (!d.has_filename() && d.has_parent_path() && d != d.root_path()) d = d.parent_path();
  return d;
}

Paths PathsFor(const fs::path& dir_in) {
  Paths p;
  p.dir = NormalizeDir(dir_in);
  p.db = p.dir / kDatabaseFileName;
  p.key = p.dir / kKeyFileName;
  p.key_new = p.dir / kNewKeyFileName;
  p.key_side_files = {p.dir / (std::string(kKeyFileName) + ".tmp"),
                      p.dir / (std::string(kNewKeyFileName) + ".tmp")};
  for (const char* suffix : {"-journal", "-wal", "-shm"}) {
    p.db_side_files.push_back(p.dir / (std::string(kDatabaseFileName) + suffix));
  }
  return p;
}

Status CheckPassphrase(ByteSpan passphrase) {
  if (passphrase.empty()) return Error{Errc::kInvalidArgument, "passphrase is empty"};
  if (passphrase.size() > kMaxPassphraseBytes) {
    return Error{Errc::kInvalidArgument, "passphrase is longer than 1024 bytes"};
  }
  return {};
}

Status CheckParams(const crypto::Argon2idParams& params) {
  if (!params.Validate()) {
    return Error{Errc::kInvalidArgument, "Argon2id parameters out of the accepted range"};
  }
  return {};
}

Result<KeyFile> ReadKeyFile(const fs::path& path) {
  auto bytes = ReadFileCapped(path, kMaxKeyFileBytes);
  if (!bytes) {
    if (bytes.error().code == Errc::kNotFound) {
      return Error{Errc::kCorrupt, "profile key file is missing"};
    }
    return bytes.error();
  }
  return ParseKeyFile(*bytes);
}

// Opens the database with `key` and runs every check Open() promises.
Result<Database> OpenVerified(const fs::path& db_path, const crypto::SecretBytes& key) {
  auto conn = OpenKeyedConnection(db_path, key, /*create=*/false);
  if (!conn) {
    if (conn.error().code == Errc::kNotFound) {
      return Error{Errc::kCorrupt, "profile database is missing"};
    }
    return conn.error();
  }
  RHIZOME_TRY(ConfigureConnection(conn->get()));
  RHIZOME_TRY(CheckIntegrity(conn->get()));
  // SQLCipher 3 leaves the last 12 bytes of each page (padding after the IV
  // and HMAC) unauthenticated, and SQLite reads a missing tail of the last
  // page as zeros, so a file cut inside that padding still passes the checks
  // above. The file must hold whole pages, at least as many as the header says.
  auto page_size = QueryInt(conn->get(), "PRAGMA page_size");
  if (!page_size) return page_size.error();
  auto page_count = QueryInt(conn->get(), "PRAGMA page_count");
  if (!page_count) return page_count.error();
  std::error_code ec;
  const std::uintmax_t file_size = fs::file_size(db_path, ec);
  if (ec) return Error{Errc::kIo, "cannot read the profile database's size"};
  if (*page_size <= 0 || *page_count < 0 ||
      file_size % static_cast<std::uintmax_t>(*page_size) != 0 ||
      file_size / static_cast<std::uintmax_t>(*page_size) <
          static_cast<std::uintmax_t>(*page_count)) {
    return Error{Errc::kCorrupt, "profile database is truncated"};
  }
  Database db = DatabaseAccess::Adopt(std::move(*conn));
  RHIZOME_TRY(CheckAndMigrateSchema(db));
  return db;
}

// Best effort: a key file we no longer need is overwritten before it goes.
void RetireFile(const fs::path& path, crypto::RandomSource& rng) {
  if (!PathExists(path)) return;
  (void)OverwriteWithRandom(path, rng);
  (void)RemoveFile(path);
}

// SQLite's rollback journal header starts with these bytes; a committed or
// rolled-back PERSIST journal has them zeroed.
constexpr std::array<std::uint8_t, 8> kJournalMagic = {0xd9, 0xd5, 0x05, 0xf9,
                                                       0x20, 0xa1, 0x63, 0xd7};

// SECURITY: after a rekey the rollback journal holds the pages it saved, under
// the OLD key. Overwrite it with random bytes (fsynced), then remove it and
// fsync the directory, rather than leave those pages in freed blocks. Call it
// only once a fresh connection has opened the database (so any hot journal has
// been rolled back) and while no write transaction is open; as a safety net a
// journal whose header is intact (hot, or in use by another program) is left
// alone. A journal cut short by a crash in here holds random bytes, which
// SQLite ignores (no valid header). Best effort on flash storage.
Status ScrubJournal(const Paths& p, crypto::RandomSource& rng) {
  const fs::path& journal = p.db_side_files[0];  // profile.db-journal
  if (!PathExists(journal)) return {};
  auto head = ReadFileCapped(journal, kJournalMagic.size());
  if (!head) return head.error();
  if (head->size() >= kJournalMagic.size() &&
      std::equal(kJournalMagic.begin(), kJournalMagic.end(), head->begin())) {
    return Error{Errc::kIo, "the profile's journal is live; left alone"};
  }
  Status overwritten = OverwriteWithRandom(journal, rng);
  RHIZOME_TRY(RemoveFile(journal));
  RHIZOME_TRY(SyncDirectory(p.dir));
  return overwritten;
}

}  // namespace

struct Profile::Impl {
  Impl(DirectoryLock l, fs::path d, crypto::SecretBytes key, Database database)
      : lock(std::move(l)), dir(std::move(d)), db_key(std::move(key)), db(std::move(database)) {}

  // Destruction order matters: the database closes before the lock goes.
  DirectoryLock lock;
  fs::path dir;
  crypto::SecretBytes db_key;  // current key, to check a failed rekey
  Database db;
};

Profile::Profile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Profile::Profile(Profile&&) noexcept = default;
Profile& Profile::operator=(Profile&&) noexcept = default;
Profile::~Profile() = default;

Database& Profile::db() { return impl_->db; }
const fs::path& Profile::dir() const { return impl_->dir; }

bool Profile::Exists(const fs::path& dir) {
  const Paths p = PathsFor(dir);
  return PathExists(p.key) || PathExists(p.key_new) || PathExists(p.db);
}

Result<Profile> Profile::Create(const fs::path& dir_in, ByteSpan passphrase,
                                const crypto::Argon2idParams& params, crypto::RandomSource& rng,
                                bool force) {
  RHIZOME_TRY(crypto::Init());
  RHIZOME_TRY(CheckPassphrase(passphrase));
  RHIZOME_TRY(CheckParams(params));
  const Paths p = PathsFor(dir_in);
  RHIZOME_TRY(CheckOnlyOwnEntries(p.dir, kProfileFilePrefix));  // before any wipe
  if (Exists(p.dir)) {
    if (!force) {
      return Error{Errc::kAlreadyExists, "a profile already exists in this directory"};
    }
    RHIZOME_TRY(Wipe(p.dir, rng));
  }

  // The slow, memory-hungry step first, before any file exists.
  auto db_key = crypto::SecretBytes::Random(rng, kDatabaseKeyBytes);
  auto wrapped = WrapDatabaseKey(db_key, passphrase, params, rng);
  if (!wrapped) return wrapped.error();

  bool created_dir = false;
  RHIZOME_TRY(EnsurePrivateDirectory(p.dir, kProfileFilePrefix, &created_dir));
  auto lock = LockDirectory(p.dir);
  if (!lock) return lock.error();
  if (Exists(p.dir)) {  // made by someone else since we looked
    return Error{Errc::kAlreadyExists, "a profile already exists in this directory"};
  }

  auto build = [&]() -> Result<Database> {
    // An empty 0600 file first: SQLite then opens it as is and gives its
    // journal the same mode.
    RHIZOME_TRY(CreateFileExclusive(p.db, {}));
    auto conn = OpenKeyedConnection(p.db, db_key, /*create=*/false);
    if (!conn) return conn.error();
    RHIZOME_TRY(ConfigureConnection(conn->get()));
    Database db = DatabaseAccess::Adopt(std::move(*conn));
    RHIZOME_TRY(MigrateSchema(db, 0));
    RHIZOME_TRY(SyncDirectory(p.dir));
    // The key file appears last, atomically: it is the commit point. A crash
    // before it leaves a database nobody can open; Exists() still reports it
    // so nothing overwrites it without `force`.
    RHIZOME_TRY(ReplaceFileDurably(p.key, SerializeKeyFile(*wrapped)));
    return db;
  };
  auto db = build();
  if (!db) {
    // Nothing is left behind on failure.
    RetireFile(p.key_side_files[0], rng);
    RetireFile(p.key, rng);
    (void)RemoveFile(p.db);
    for (const auto& side : p.db_side_files) (void)RemoveFile(side);
    if (created_dir) ::rmdir(p.dir.c_str());
    return db.error();
  }

  return Profile(
      std::make_unique<Impl>(std::move(*lock), p.dir, std::move(db_key), std::move(*db)));
}

Result<Profile> Profile::Open(const fs::path& dir_in, ByteSpan passphrase) {
  RHIZOME_TRY(crypto::Init());
  RHIZOME_TRY(CheckPassphrase(passphrase));
  const Paths p = PathsFor(dir_in);
  if (!Exists(p.dir)) return Error{Errc::kNotFound, "no profile in this directory"};
  auto lock = LockDirectory(p.dir);
  if (!lock) return lock.error();
  if (!PathExists(p.db)) return Error{Errc::kCorrupt, "profile database is missing"};

  // Normally one key file. After a passphrase change interrupted by a crash
  // there are two, and exactly one of them opens the database (DESIGN §12).
  std::vector<fs::path> candidates;
  if (PathExists(p.key)) candidates.push_back(p.key);
  if (PathExists(p.key_new)) candidates.push_back(p.key_new);
  if (candidates.empty()) return Error{Errc::kCorrupt, "profile key file is missing"};

  std::optional<Error> unreadable;  // first key file that did not parse
  bool unwrap_failed = false;
  bool key_mismatch = false;
  std::optional<std::size_t> chosen;
  std::optional<Database> db;
  crypto::SecretBytes db_key;
  for (std::size_t i = 0; i < candidates.size() && !chosen; ++i) {
    auto file = ReadKeyFile(candidates[i]);
    if (!file) {
      if (!unreadable) unreadable = file.error();
      continue;
    }
    auto key = UnwrapDatabaseKey(*file, passphrase);
    if (!key) {
      if (key.error().code != Errc::kWrongPassphrase) return key.error();  // out of memory
      unwrap_failed = true;
      continue;
    }
    auto opened = OpenVerified(p.db, *key);
    if (!opened) {
      if (opened.error().code == kKeyMismatch.code) {
        key_mismatch = true;
        continue;
      }
      // The key matched (the passphrase was right), so this is the
      // database's own problem: damage, a newer schema, no SQLCipher, I/O.
      return opened.error();
    }
    chosen = i;
    db.emplace(std::move(*opened));
    db_key = std::move(*key);
  }
  if (!chosen) {
    // The passphrase failed to unwrap a key file that exists: the usual wrong
    // passphrase, or the passphrase whose change did not complete.
    if (unwrap_failed) return kWrongPassphraseError;
    if (key_mismatch) {
      return Error{Errc::kCorrupt, "profile database is damaged or does not match its key file"};
    }
    return unreadable.value_or(kWrongPassphraseError);
  }

  // Tidy up after an interrupted change; best effort (the next Open retries).
  if (candidates.size() == 2) {
    auto& rng = crypto::SystemRandom();
    if (candidates[*chosen] == p.key_new) {
      // The change had reached the rekey: finish it. SECURITY: only once the
      // directory is synced (a rekey committed by deleting its journal is not
      // durable before that) may the old key file, the only other way in,
      // be destroyed.
      if (SyncDirectory(p.dir)) {
        (void)OverwriteWithRandom(p.key, rng);
        if (RenameFile(p.key_new, p.key)) (void)SyncDirectory(p.dir);
      }
    } else {
      // The change never reached the rekey: its key file opens nothing.
      RetireFile(p.key_new, rng);
      (void)SyncDirectory(p.dir);
    }
  }
  for (const auto& side : p.key_side_files) RetireFile(side, crypto::SystemRandom());
  // A journal left now is not hot (the open above would have rolled it back):
  // at most a rekey's, whose scrub was interrupted, holding old-key pages.
  (void)ScrubJournal(p, crypto::SystemRandom());

  return Profile(
      std::make_unique<Impl>(std::move(*lock), p.dir, std::move(db_key), std::move(*db)));
}

Status Profile::ChangePassphrase(ByteSpan new_passphrase, const crypto::Argon2idParams& params,
                                 crypto::RandomSource& rng, const PasswdStep* crash_at) {
  RHIZOME_TRY(CheckPassphrase(new_passphrase));
  RHIZOME_TRY(CheckParams(params));
  sqlite3* handle = DatabaseAccess::Handle(impl_->db);
  if (handle == nullptr) {
    return Error{Errc::kIo, "profile database is closed; reopen the profile"};
  }
  if (sqlite3_get_autocommit(handle) == 0) {
    return Error{Errc::kInvalidArgument, "cannot change the passphrase inside a transaction"};
  }
  // The connection is replaced by a fresh one (step 2); a statement of the old
  // one would outlive it.
  if (sqlite3_next_stmt(handle, nullptr) != nullptr) {
    return Error{Errc::kInvalidArgument, "cannot change the passphrase while statements exist"};
  }
  const Paths p = PathsFor(impl_->dir);
  // Open() finishes an interrupted change; if that tidy-up failed, the
  // current key may still be in profile.key.new, and step 1 would replace it.
  if (PathExists(p.key_new)) {
    return Error{Errc::kIo, "an earlier passphrase change is unfinished; reopen the profile first"};
  }
  auto crashes_after = [&](PasswdStep step) { return crash_at != nullptr && *crash_at == step; };

  // SECURITY: a new random database key, not just a new wrapping: an old (or
  // coerced) passphrase, even with a saved copy of the old key file, stops
  // opening the profile once the database is rekeyed.
  auto new_key = crypto::SecretBytes::Random(rng, kDatabaseKeyBytes);
  auto wrapped = WrapDatabaseKey(new_key, new_passphrase, params, rng);
  if (!wrapped) return wrapped.error();

  // Step 1: profile.key.new, durable (temp, fsync, rename, fsync dir).
  RHIZOME_TRY(ReplaceFileDurably(p.key_new, SerializeKeyFile(*wrapped)));
  if (crashes_after(PasswdStep::kAfterNewKeyFileWritten)) return kSimulatedCrash;

  // Step 2: rekey. One atomic transaction rewriting every page; a crash in it
  // rolls back to the old key from the journal at the next open.
  //
  // SECURITY: the journal is PERSIST for the rekey: SQLite then commits by
  // zeroing and fsyncing the journal header (durable without a directory
  // sync) and leaves the file, full of old-key pages, for ScrubJournal to
  // overwrite instead of unlinking it with its content intact.
  if (auto persist = SetJournalMode(handle, "persist"); !persist) {
    (void)SetJournalMode(handle, "delete");
    RetireFile(p.key_new, rng);  // nothing else changed: undo step 1
    (void)SyncDirectory(p.dir);
    return persist.error();
  }
  (void)RekeyConnection(handle, new_key);  // tells nothing about the outcome
  // SECURITY: SQLCipher 3.4.1 reports no rekey failure, and after a failed
  // page write it keeps the new key for writing while reading with the old
  // one: that connection would write pages under a key nobody holds. So it
  // is never used again whatever happened. Closing it rolls back anything
  // left open; a fresh connection then proves the outcome, as the next
  // Open() would, and becomes the Profile's database.
  handle = nullptr;
  impl_->db = DatabaseAccess::Closed();
  auto on_new_key = OpenVerified(p.db, new_key);
  if (!on_new_key) {
    auto on_old_key = OpenVerified(p.db, impl_->db_key);
    if (!on_old_key) {
      // Neither key opens it now (I/O error, busy, damage). The Profile stays
      // closed; profile.key.new is kept, so Open() tries both key files.
      return Error{Errc::kIo, "rekeying the database failed; close and reopen the profile"};
    }
    // Every page verified under the old key: the rekey did not happen.
    impl_->db = std::move(*on_old_key);
    (void)ScrubJournal(p, rng);
    RetireFile(p.key_new, rng);  // undo step 1
    (void)SyncDirectory(p.dir);
    return Error{Errc::kIo, "rekeying the database failed; the passphrase is unchanged"};
  }
  impl_->db = std::move(*on_new_key);
  impl_->db_key = std::move(new_key);
  // SECURITY: the rekey must be durable before step 3 destroys the old key
  // file, or a power loss could leave a database on the old key beside a
  // key file that no longer holds it.
  if (!SyncDirectory(p.dir)) {
    return Error{Errc::kIo, "cannot sync the profile directory; reopening the profile finishes it"};
  }
  (void)ScrubJournal(p, rng);  // best effort; Wipe overwrites it too
  if (crashes_after(PasswdStep::kAfterRekey)) return kSimulatedCrash;

  // Step 3 (hardening): the old key file can no longer open the database;
  // overwrite it in place before it is unlinked, so its blocks do not keep a
  // wrapped old key. A crash here leaves profile.key.new, which Open() uses.
  (void)OverwriteWithRandom(p.key, rng);

  // Step 4: rename profile.key.new over profile.key, then fsync the directory.
  if (!RenameFile(p.key_new, p.key)) {
    return Error{Errc::kIo, "cannot replace the key file; reopening the profile finishes it"};
  }
  if (crashes_after(PasswdStep::kAfterRename)) return kSimulatedCrash;
  RHIZOME_TRY(SyncDirectory(p.dir));
  return {};
}

Status Profile::Wipe(const fs::path& dir_in, crypto::RandomSource& rng) {
  RHIZOME_TRY(crypto::Init());
  const Paths p = PathsFor(dir_in);
  if (!Exists(p.dir)) return Error{Errc::kNotFound, "no profile in this directory"};
  auto lock = LockDirectory(p.dir);
  if (!lock) return lock.error();

  std::optional<Error> first_error;
  auto note = [&](const Status& s) {
    if (!s && !first_error) first_error = s.error();
  };
  // SECURITY: the key files first: without them the database is random bytes
  // to anyone, even with the passphrase. Overwrite, fsync, then unlink.
  std::vector<fs::path> key_files = {p.key, p.key_new};
  key_files.insert(key_files.end(), p.key_side_files.begin(), p.key_side_files.end());
  for (const auto& f : key_files) {
    if (PathExists(f)) note(OverwriteWithRandom(f, rng));
  }
  // The database and its journals: best effort (on flash storage the old
  // blocks may survive the overwrite anyway).
  std::vector<fs::path> db_files = {p.db};
  db_files.insert(db_files.end(), p.db_side_files.begin(), p.db_side_files.end());
  for (const auto& f : db_files) {
    if (PathExists(f)) (void)OverwriteWithRandom(f, rng);
  }
  for (const auto& f : key_files) note(RemoveFile(f));
  for (const auto& f : db_files) note(RemoveFile(f));
  // A daemon's socket left by a killed daemon (no data in it; the lock above
  // proves no daemon runs).
  (void)::unlink((p.dir / kSocketFileName).c_str());
  note(SyncDirectory(p.dir));

  // The directory goes too, unless it holds files that are not ours (the
  // profile might have been pointed at a directory with other content).
  if (::rmdir(p.dir.c_str()) == 0 && p.dir.has_parent_path()) {
    (void)SyncDirectory(p.dir.parent_path());
  }
  if (first_error) return *first_error;
  return {};
}

}  // namespace rhizome::storage
