// Private to the storage module: small POSIX file operations with the
// durability and permission rules of the profile directory (DESIGN §12).
//
// - Files are created with mode 0600, the profile directory with 0700.
// - Symbolic links are not followed for profile files (O_NOFOLLOW).
// - A durable replace is: write a temp file, fsync it, rename it over the
//   target, fsync the directory.
// Error messages are static; paths are never put in them.
// Thread safety: no shared state.
#pragma once

#include <filesystem>
#include <string_view>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"

namespace rhizome::crypto {
class RandomSource;
}

namespace rhizome::storage {

inline constexpr unsigned kProfileFileMode = 0600;
inline constexpr unsigned kProfileDirMode = 0700;

// True if `path` exists (any type, symlinks not followed).
bool PathExists(const std::filesystem::path& path);

// Reads a regular file, at most `max_bytes + 1` bytes (so the caller can tell
// "too large" from "exactly max"). Errors: kNotFound; kIo.
Result<Bytes> ReadFileCapped(const std::filesystem::path& path, std::size_t max_bytes);

// Creates `path` (mode 0600, must not exist) and writes `bytes`, then fsyncs.
// Errors: kAlreadyExists; kIo.
Status CreateFileExclusive(const std::filesystem::path& path, ByteSpan bytes);

// Writes `bytes` to `<target>.tmp` (0600), fsyncs it, renames it over
// `target` and fsyncs the directory. On failure the temp file is removed and
// `target` is untouched. Errors: kIo.
Status ReplaceFileDurably(const std::filesystem::path& target, ByteSpan bytes);

// Renames `from` over `to` (same directory). Errors: kIo.
Status RenameFile(const std::filesystem::path& from, const std::filesystem::path& to);

// fsync() on a directory, making renames and unlinks in it durable. Errors: kIo.
Status SyncDirectory(const std::filesystem::path& dir);

// Overwrites the whole current length of a regular file with random bytes and
// fsyncs it (at least one byte is written, so an empty file also gets a write).
// Errors: kNotFound; kIo.
Status OverwriteWithRandom(const std::filesystem::path& path, crypto::RandomSource& rng);

// Removes a file. Missing is not an error. Errors: kIo.
Status RemoveFile(const std::filesystem::path& path);

// An exclusive advisory lock (flock) on a directory, held until destruction.
// Locks conflict across processes and between two locks in one process.
class DirectoryLock {
 public:
  DirectoryLock() = default;
  ~DirectoryLock();
  DirectoryLock(DirectoryLock&& other) noexcept;
  DirectoryLock& operator=(DirectoryLock&& other) noexcept;
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  friend Result<DirectoryLock> LockDirectory(const std::filesystem::path& dir);
  int fd_ = -1;
};

// Takes the lock without waiting. Errors: kIo if another holder has it ("in
// use") or the directory cannot be opened.
Result<DirectoryLock> LockDirectory(const std::filesystem::path& dir);

// OK if `dir` is missing or every entry's name starts with `allowed_prefix`.
// Errors: kInvalidArgument if another entry exists; kIo.
Status CheckOnlyOwnEntries(const std::filesystem::path& dir, std::string_view allowed_prefix);

// Creates `dir` (and parents) if missing and sets its mode to 0700. An
// existing directory is accepted only if every entry's name starts with
// `allowed_prefix` (leftovers of our own, e.g. "profile.").
// Errors: kInvalidArgument if it exists and is not a directory, or holds
// other entries; kIo.
Status EnsurePrivateDirectory(const std::filesystem::path& dir, std::string_view allowed_prefix,
                              bool* created);

}  // namespace rhizome::storage
