#include "passphrase.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "rhizome/storage/profile.h"

namespace rhizome::client {

namespace {

// Strips one trailing "\n" or "\r\n" from the first `len` bytes; returns new length.
std::size_t TrimNewline(const std::uint8_t* data, std::size_t len) {
  if (len > 0 && data[len - 1] == '\n') {
    --len;
    if (len > 0 && data[len - 1] == '\r') --len;
  }
  return len;
}

Result<crypto::SecretBytes> Finish(const crypto::SecretBytes& buf, std::size_t len) {
  len = TrimNewline(buf.expose().data(), len);
  if (len == 0) return Error{Errc::kInvalidArgument, "the passphrase is empty"};
  if (len > storage::kMaxPassphraseBytes) {
    return Error{Errc::kLimitExceeded, "the passphrase is longer than 1024 bytes"};
  }
  return crypto::SecretBytes::CopyFrom(buf.expose().first(len));
}

// Reads up to buf.size() bytes from fd; returns bytes read, or -1.
long ReadAll(int fd, crypto::SecretBytes& buf, bool stop_at_newline) {
  std::size_t got = 0;
  auto out = buf.expose_mut();
  while (got < out.size()) {
    ssize_t n = ::read(fd, out.data() + got, stop_at_newline ? 1 : out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
    if (stop_at_newline && out[got - 1] == '\n') break;
  }
  return static_cast<long>(got);
}

class TtyEchoOff {
 public:
  explicit TtyEchoOff(int fd) : fd_(fd) {
    if (tcgetattr(fd_, &saved_) == 0) {
      termios t = saved_;
      t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      t.c_lflag |= static_cast<tcflag_t>(ECHONL);
      active_ = tcsetattr(fd_, TCSAFLUSH, &t) == 0;
    }
  }
  ~TtyEchoOff() {
    if (active_) tcsetattr(fd_, TCSAFLUSH, &saved_);
  }
  TtyEchoOff(const TtyEchoOff&) = delete;
  TtyEchoOff& operator=(const TtyEchoOff&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Result<crypto::SecretBytes> PromptOnce(int tty, std::string_view prompt) {
  (void)!::write(tty, prompt.data(), prompt.size());
  TtyEchoOff echo_off(tty);
  crypto::SecretBytes buf(storage::kMaxPassphraseBytes + 2);
  long n = ReadAll(tty, buf, /*stop_at_newline=*/true);
  if (n < 0) return Error{Errc::kIo, "cannot read from the terminal"};
  return Finish(buf, static_cast<std::size_t>(n));
}

}  // namespace

Result<crypto::SecretBytes> ReadPassphraseFile(const std::filesystem::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Error{Errc::kIo, "cannot read the passphrase file"};
  // Room for the limit, a CR LF, and one byte more to detect an oversized file.
  crypto::SecretBytes buf(storage::kMaxPassphraseBytes + 3);
  long n = ReadAll(fd.get(), buf, /*stop_at_newline=*/false);
  if (n < 0) return Error{Errc::kIo, "cannot read the passphrase file"};
  return Finish(buf, static_cast<std::size_t>(n));
}

Result<crypto::SecretBytes> PromptPassphrase(std::string_view prompt, bool confirm) {
  Fd tty(::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (tty.get() < 0) {
    return Error{Errc::kNotFound,
                 "no terminal to ask for the passphrase: use --passphrase-file or "
                 "RHIZOME_PASSPHRASE"};
  }
  auto first = PromptOnce(tty.get(), prompt);
  if (!first || !confirm) return first;
  auto second = PromptOnce(tty.get(), "Repeat it: ");
  if (!second) return second;
  if (!first->ConstantTimeEquals(*second)) {
    return Error{Errc::kInvalidArgument, "the two passphrases differ"};
  }
  return first;
}

Result<crypto::SecretBytes> GetPassphrase(const std::optional<std::filesystem::path>& file,
                                          const char* env_name, std::string_view prompt,
                                          bool confirm) {
  if (file) return ReadPassphraseFile(*file);
  if (const char* env = std::getenv(env_name); env != nullptr) {
    std::size_t len = std::strlen(env);
    if (len == 0) return Error{Errc::kInvalidArgument, "the passphrase is empty"};
    if (len > storage::kMaxPassphraseBytes) {
      return Error{Errc::kLimitExceeded, "the passphrase is longer than 1024 bytes"};
    }
    return crypto::SecretBytes::CopyFrom(AsBytes(std::string_view(env, len)));
  }
  return PromptPassphrase(prompt, confirm);
}

Result<std::string> PromptLine(std::string_view prompt) {
  Fd tty(::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (tty.get() < 0) return Error{Errc::kNotFound, "no terminal to confirm on"};
  (void)!::write(tty.get(), prompt.data(), prompt.size());
  std::string line;
  char c;
  while (line.size() < 256) {
    ssize_t n = ::read(tty.get(), &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    line.push_back(c);
  }
  return line;
}

}  // namespace rhizome::client
