#include "file_util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <utility>

#include "rhizome/crypto/random.h"

namespace rhizome::storage {

namespace {

constexpr std::size_t kOverwriteChunkBytes = 64 * 1024;

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // close() reports deferred write errors on some file systems.
  bool Close() {
    int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0;
  }

 private:
  int fd_;
};

bool WriteAll(int fd, ByteSpan bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool SyncFd(int fd) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return false;
  }
  return true;
}

}  // namespace

bool PathExists(const std::filesystem::path& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

Result<Bytes> ReadFileCapped(const std::filesystem::path& path, std::size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Error{Errc::kNotFound, "file not found"};
    return Error{Errc::kIo, "cannot open a profile file for reading"};
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error{Errc::kIo, "a profile file is not a regular file"};
  }
  Bytes out;
  std::array<std::uint8_t, 4096> buf{};
  while (out.size() <= max_bytes) {
    const std::size_t want = std::min(buf.size(), max_bytes + 1 - out.size());
    ssize_t n = ::read(fd.get(), buf.data(), want);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{Errc::kIo, "cannot read a profile file"};
    }
    if (n == 0) break;
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  }
  return out;
}

Status CreateFileExclusive(const std::filesystem::path& path, ByteSpan bytes) {
  Fd fd(
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, kProfileFileMode));
  if (fd.get() < 0) {
    if (errno == EEXIST) return Error{Errc::kAlreadyExists, "profile file already exists"};
    return Error{Errc::kIo, "cannot create a profile file"};
  }
  // The umask may have removed bits we did not want anyway; make it exact.
  if (::fchmod(fd.get(), kProfileFileMode) != 0 || !WriteAll(fd.get(), bytes) ||
      !SyncFd(fd.get()) || !fd.Close()) {
    ::unlink(path.c_str());
    return Error{Errc::kIo, "cannot write a profile file"};
  }
  return {};
}

Status ReplaceFileDurably(const std::filesystem::path& target, ByteSpan bytes) {
  std::filesystem::path tmp = target;
  tmp += ".tmp";
  ::unlink(tmp.c_str());  // a leftover from a crash; its content is ours
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                 kProfileFileMode));
    if (fd.get() < 0) return Error{Errc::kIo, "cannot create a profile file"};
    if (::fchmod(fd.get(), kProfileFileMode) != 0 || !WriteAll(fd.get(), bytes) ||
        !SyncFd(fd.get()) || !fd.Close()) {
      ::unlink(tmp.c_str());
      return Error{Errc::kIo, "cannot write a profile file"};
    }
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Error{Errc::kIo, "cannot rename a profile file into place"};
  }
  return SyncDirectory(target.parent_path());
}

Status RenameFile(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Error{Errc::kIo, "cannot rename a profile file"};
  }
  return {};
}

Status SyncDirectory(const std::filesystem::path& dir) {
  Fd fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || !SyncFd(fd.get())) {
    return Error{Errc::kIo, "cannot sync the profile directory"};
  }
  return {};
}

Status OverwriteWithRandom(const std::filesystem::path& path, crypto::RandomSource& rng) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Error{Errc::kNotFound, "file not found"};
    return Error{Errc::kIo, "cannot open a profile file to overwrite it"};
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error{Errc::kIo, "a profile file is not a regular file"};
  }
  const auto size = static_cast<std::size_t>(std::max<off_t>(st.st_size, 1));
  Bytes chunk(std::min(size, kOverwriteChunkBytes));
  std::size_t done = 0;
  while (done < size) {
    const std::size_t n = std::min(chunk.size(), size - done);
    rng.Fill(MutableByteSpan(chunk.data(), n));
    if (!WriteAll(fd.get(), ByteSpan(chunk.data(), n))) {
      return Error{Errc::kIo, "cannot overwrite a profile file"};
    }
    done += n;
  }
  if (!SyncFd(fd.get()) || !fd.Close()) {
    return Error{Errc::kIo, "cannot sync an overwritten profile file"};
  }
  return {};
}

Status RemoveFile(const std::filesystem::path& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Error{Errc::kIo, "cannot remove a profile file"};
  }
  return {};
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

DirectoryLock::DirectoryLock(DirectoryLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

DirectoryLock& DirectoryLock::operator=(DirectoryLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Result<DirectoryLock> LockDirectory(const std::filesystem::path& dir) {
  DirectoryLock lock;
  lock.fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock.fd_ < 0) return Error{Errc::kIo, "cannot open the profile directory"};
  while (::flock(lock.fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      return Error{Errc::kIo, "profile is in use (open in another process or object)"};
    }
    return Error{Errc::kIo, "cannot lock the profile directory"};
  }
  return lock;
}

Status CheckOnlyOwnEntries(const std::filesystem::path& dir, std::string_view allowed_prefix) {
  // SECURITY: a profile directory is chmod'ed 0700 and filled, or wiped and
  // removed; never do that to a directory that holds other things (a home
  // directory, /tmp, ...). The directory itself may be a symlink (e.g. to
  // an encrypted volume); the files in it are never followed.
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return Error{Errc::kIo, "cannot inspect the profile directory"};
  }
  if (!S_ISDIR(st.st_mode)) {
    return Error{Errc::kInvalidArgument, "profile path exists and is not a directory"};
  }
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, allowed_prefix.size(), allowed_prefix) != 0) {
      return Error{Errc::kInvalidArgument,
                   "profile directory is not empty (a profile needs a directory of its own)"};
    }
  }
  if (ec) return Error{Errc::kIo, "cannot list the profile directory"};
  return {};
}

Status EnsurePrivateDirectory(const std::filesystem::path& dir, std::string_view allowed_prefix,
                              bool* created) {
  *created = false;
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return Error{Errc::kInvalidArgument, "profile path exists and is not a directory"};
    }
    RHIZOME_TRY(CheckOnlyOwnEntries(dir, allowed_prefix));
  } else {
    if (errno != ENOENT) return Error{Errc::kIo, "cannot inspect the profile directory"};
    std::error_code ec;
    if (dir.has_parent_path()) std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec) return Error{Errc::kIo, "cannot create the profile directory's parents"};
    if (::mkdir(dir.c_str(), kProfileDirMode) != 0) {
      return Error{Errc::kIo, "cannot create the profile directory"};
    }
    *created = true;
    if (dir.has_parent_path()) (void)SyncDirectory(dir.parent_path());
  }
  // SECURITY: only the owner may list or enter the profile directory.
  if (::chmod(dir.c_str(), kProfileDirMode) != 0) {
    return Error{Errc::kIo, "cannot set the profile directory's permissions"};
  }
  return {};
}

}  // namespace rhizome::storage
