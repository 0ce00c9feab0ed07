#include "relay_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/version.h"
#include "rhizome/protocol/wire_types.h"

namespace rhizome::relay {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kMagic = "RHZRKEY1";
constexpr std::size_t kFixedBytes = 8 + 32 + 32 + 1;

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

Status WriteAll(int fd, ByteSpan data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error{Errc::kIo, "cannot write the relay key file"};
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Status StoreKeys(const fs::path& dir, const RelayKeys& keys) {
  crypto::SecretBytes buf(kFixedBytes + 32);
  auto b = buf.expose_mut();
  std::memcpy(b.data(), kMagic.data(), 8);
  std::memcpy(b.data() + 8, keys.noise.secret_key.expose().data(), 32);
  std::memcpy(b.data() + 40, keys.signing.secret_key.expose().data(), 32);  // the seed half
  std::size_t len = kFixedBytes;
  if (keys.closed()) {
    b[72] = 32;
    std::memcpy(b.data() + kFixedBytes, keys.psk.expose().data(), 32);
    len += 32;
  } else {
    b[72] = 0;
  }
  const fs::path tmp = dir / (std::string(kRelayKeysFileName) + ".tmp");
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0) return Error{Errc::kIo, "cannot create the relay key file"};
    RHIZOME_TRY(WriteAll(fd.get(), buf.expose().first(len)));
    if (::fsync(fd.get()) != 0) return Error{Errc::kIo, "cannot sync the relay key file"};
  }
  if (::rename(tmp.c_str(), (dir / kRelayKeysFileName).c_str()) != 0) {
    return Error{Errc::kIo, "cannot install the relay key file"};
  }
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0 || ::fsync(dfd.get()) != 0) {
    return Error{Errc::kIo, "cannot sync the data directory"};
  }
  return {};
}

}  // namespace

bool RelayKeys::closed() const {
  return psk.size() == 32 && !protocol::IsAllZero(psk.expose());
}

Result<RelayKeys> LoadRelayKeys(const fs::path& data_dir) {
  Fd fd(::open((data_dir / kRelayKeysFileName).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Error{Errc::kNotFound, "no relay keys in the data directory"};
    return Error{Errc::kIo, "cannot read the relay key file"};
  }
  crypto::SecretBytes buf(kMaxRelayKeysFileBytes + 1);
  std::size_t got = 0;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.expose_mut().data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{Errc::kIo, "cannot read the relay key file"};
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
    if (got == buf.size()) break;
  }
  auto b = buf.expose();
  if (got < kFixedBytes || std::memcmp(b.data(), kMagic.data(), 8) != 0) {
    return Error{Errc::kCorrupt, "the relay key file is damaged"};
  }
  const std::size_t psk_len = b[72];
  if ((psk_len != 0 && psk_len != 32) || got != kFixedBytes + psk_len) {
    return Error{Errc::kCorrupt, "the relay key file is damaged"};
  }
  auto noise = crypto::X25519FromSecret(b.subspan(8, 32));
  if (!noise) return Error{Errc::kCorrupt, "the relay key file is damaged"};
  auto signing = crypto::Ed25519FromSeed(b.subspan(40, 32));
  if (!signing) return Error{Errc::kCorrupt, "the relay key file is damaged"};
  RelayKeys keys{std::move(*noise), std::move(*signing), crypto::SecretBytes(32)};
  if (psk_len == 32) {
    std::memcpy(keys.psk.expose_mut().data(), b.data() + kFixedBytes, 32);
  }
  return keys;
}

Result<RelayKeys> LoadOrCreateRelayKeys(const fs::path& data_dir, bool closed,
                                        crypto::RandomSource& rng, bool* created) {
  *created = false;
  auto existing = LoadRelayKeys(data_dir);
  if (existing || existing.error().code != Errc::kNotFound) return existing;
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) return Error{Errc::kIo, "cannot create the data directory"};
  ::chmod(data_dir.c_str(), 0700);
  RelayKeys keys{crypto::X25519Generate(rng), crypto::Ed25519Generate(rng), crypto::SecretBytes(32)};
  if (closed) {
    do {
      rng.Fill(keys.psk.expose_mut());
    } while (protocol::IsAllZero(keys.psk.expose()));
  }
  RHIZOME_TRY(StoreKeys(data_dir, keys));
  *created = true;
  return keys;
}

Result<std::string> FormatAddress(const RelayKeys& keys, const std::string& host,
                                  std::uint16_t port) {
  protocol::RelayAddress a;
  a.noise_key = keys.noise.public_key;
  a.signing_key = keys.signing.public_key;
  auto h = protocol::NormalizeHost(host);
  if (!h) return h.error();
  a.host = *h;
  a.port = port;
  a.versions.assign(std::begin(protocol::kSupportedWireVersions),
                    std::end(protocol::kSupportedWireVersions));
  std::sort(a.versions.begin(), a.versions.end());
  if (keys.closed()) a.psk = keys.psk.Clone();
  return protocol::FormatRelayAddress(a);
}

}  // namespace rhizome::relay
