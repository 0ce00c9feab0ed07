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

constexpr std::string_view kMagicV1 = "RHZRKEY1";
constexpr std::string_view kMagicV2 = "RHZRKEY2";
constexpr std::size_t kMagicBytes = 8;
constexpr std::size_t kKey = 32;
constexpr std::uint8_t kSigningSeed = 1;
constexpr std::uint8_t kSigningPublicOnly = 2;

Error Damaged() { return Error{Errc::kCorrupt, "the relay key file is damaged"}; }

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

// Appends to a SecretBytes-backed buffer of fixed capacity.
class SecretWriter {
 public:
  explicit SecretWriter(std::size_t capacity) : buf_(capacity) {}
  void Put(ByteSpan data) {
    std::memcpy(buf_.expose_mut().data() + len_, data.data(), data.size());
    len_ += data.size();
  }
  void PutU8(std::uint8_t v) { Put(ByteSpan(&v, 1)); }
  void PutU16(std::uint16_t v) {
    const std::uint8_t b[2] = {static_cast<std::uint8_t>(v >> 8),
                               static_cast<std::uint8_t>(v & 0xff)};
    Put(b);
  }
  void PutU64(std::uint64_t v) {
    std::uint8_t b[8];
    for (std::size_t i = 0; i < 8; ++i) b[i] = static_cast<std::uint8_t>(v >> (56 - 8 * i));
    Put(b);
  }
  ByteSpan bytes() const { return buf_.expose().first(len_); }

 private:
  crypto::SecretBytes buf_;
  std::size_t len_ = 0;
};

// Reads a key file strictly: every read is bounds-checked.
class Reader {
 public:
  explicit Reader(ByteSpan in) : in_(in) {}
  bool Take(std::size_t n, ByteSpan& out) {
    if (in_.size() - pos_ < n) return false;
    out = in_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool U8(std::uint8_t& v) {
    ByteSpan b;
    if (!Take(1, b)) return false;
    v = b[0];
    return true;
  }
  bool U16(std::uint16_t& v) {
    ByteSpan b;
    if (!Take(2, b)) return false;
    v = static_cast<std::uint16_t>((b[0] << 8) | b[1]);
    return true;
  }
  bool U64(std::uint64_t& v) {
    ByteSpan b;
    if (!Take(8, b)) return false;
    v = 0;
    for (std::uint8_t x : b) v = (v << 8) | x;
    return true;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  ByteSpan in_;
  std::size_t pos_ = 0;
};

bool IsOpenPsk(const crypto::SecretBytes& psk) { return protocol::IsAllZero(psk.expose()); }

// psk_len || psk, as the file stores it (0 for an open relay).
void PutPsk(SecretWriter& w, const crypto::SecretBytes& psk) {
  if (IsOpenPsk(psk)) {
    w.PutU8(0);
  } else {
    w.PutU8(kKey);
    w.Put(psk.expose());
  }
}

bool ReadPsk(Reader& r, crypto::SecretBytes& psk) {
  std::uint8_t len = 0;
  ByteSpan bytes;
  if (!r.U8(len) || (len != 0 && len != kKey)) return false;
  psk = crypto::SecretBytes(kKey);
  if (len == 0) return true;
  if (!r.Take(kKey, bytes) || protocol::IsAllZero(bytes)) return false;
  std::memcpy(psk.expose_mut().data(), bytes.data(), kKey);
  return true;
}

Result<crypto::SecretBytes> ReadFile(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
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
  if (got > kMaxRelayKeysFileBytes) return Damaged();
  return crypto::SecretBytes::CopyFrom(buf.expose().first(got));
}

Result<RelayKeys> ParseV1(ByteSpan b) {
  Reader r(b.subspan(kMagicBytes));
  ByteSpan noise_secret;
  ByteSpan seed;
  crypto::SecretBytes psk;
  if (!r.Take(kKey, noise_secret) || !r.Take(kKey, seed) || !ReadPsk(r, psk) || !r.done()) {
    return Damaged();
  }
  auto noise = crypto::X25519FromSecret(noise_secret);
  auto signing = crypto::Ed25519FromSeed(seed);
  if (!noise || !signing) return Damaged();
  RelayKeys keys;
  keys.noise = std::move(*noise);
  keys.signing = std::move(*signing);
  keys.psk = std::move(psk);
  return keys;
}

Result<RelayKeys> ParseV2(ByteSpan b) {
  Reader r(b.subspan(kMagicBytes));
  ByteSpan noise_secret;
  ByteSpan signing_bytes;
  std::uint8_t signing_form = 0;
  RelayKeys keys;
  if (!r.Take(kKey, noise_secret) || !r.U8(signing_form) || !r.Take(kKey, signing_bytes) ||
      !ReadPsk(r, keys.psk)) {
    return Damaged();
  }
  auto noise = crypto::X25519FromSecret(noise_secret);
  if (!noise) return Damaged();
  keys.noise = std::move(*noise);
  if (signing_form == kSigningSeed) {
    auto signing = crypto::Ed25519FromSeed(signing_bytes);
    if (!signing) return Damaged();
    keys.signing = std::move(*signing);
  } else if (signing_form == kSigningPublicOnly) {
    if (!crypto::Ed25519IsStrictPublicKey(signing_bytes)) return Damaged();
    std::copy(signing_bytes.begin(), signing_bytes.end(), keys.signing.public_key.begin());
  } else {
    return Damaged();
  }

  std::uint8_t has_previous = 0;
  if (!r.U8(has_previous) || has_previous > 1) return Damaged();
  if (has_previous == 1) {
    ByteSpan prev_secret;
    PreviousRelayKeys prev;
    if (!r.Take(kKey, prev_secret) || !ReadPsk(r, prev.psk) || !r.U64(prev.transition_ends)) {
      return Damaged();
    }
    auto prev_noise = crypto::X25519FromSecret(prev_secret);
    if (!prev_noise) return Damaged();
    prev.noise = std::move(*prev_noise);
    keys.previous.emplace(std::move(prev));
  }

  std::uint16_t statement_len = 0;
  ByteSpan statement_bytes;
  if (!r.U16(statement_len) || !r.Take(statement_len, statement_bytes) || !r.done()) {
    return Damaged();
  }
  if (statement_len > 0) {
    auto statement = protocol::ParseRelayKeyStatement(statement_bytes);
    if (!statement) return Damaged();
    // SECURITY: the relay only ever pushes a statement that is genuine and
    // names the keys it is actually serving under.
    if (!protocol::VerifyRelayKeyStatement(*statement, keys.signing.public_key)) return Damaged();
    if (statement->noise_key != keys.noise.public_key) return Damaged();
    const bool statement_open = statement->psk.empty();
    if (statement_open != IsOpenPsk(keys.psk)) return Damaged();
    if (!statement_open && !statement->psk.ConstantTimeEquals(keys.psk)) return Damaged();
    keys.statement.emplace(std::move(*statement));
  }
  return keys;
}

}  // namespace

bool RelayKeys::closed() const { return psk.size() == kKey && !IsOpenPsk(psk); }

bool RelayKeys::has_signing_secret() const {
  return signing.secret_key.size() == crypto::kEd25519SecretKeyBytes;
}

Result<RelayKeys> LoadRelayKeys(const fs::path& data_dir) {
  auto file = ReadFile(data_dir / kRelayKeysFileName);
  if (!file) return file.error();
  ByteSpan b = file->expose();
  if (b.size() < kMagicBytes) return Damaged();
  const std::string_view magic(reinterpret_cast<const char*>(b.data()), kMagicBytes);
  if (magic == kMagicV1) return ParseV1(b);
  if (magic == kMagicV2) return ParseV2(b);
  return Damaged();
}

Status StoreRelayKeys(const fs::path& dir, const RelayKeys& keys) {
  if (keys.noise.secret_key.size() != kKey || keys.psk.size() != kKey ||
      (keys.previous &&
       (keys.previous->noise.secret_key.size() != kKey || keys.previous->psk.size() != kKey))) {
    return Error{Errc::kInvalidArgument, "relay keys have the wrong size"};
  }
  SecretWriter w(kMaxRelayKeysFileBytes);
  w.Put(AsBytes(kMagicV2));
  w.Put(keys.noise.secret_key.expose());
  if (keys.has_signing_secret()) {
    w.PutU8(kSigningSeed);
    w.Put(keys.signing.secret_key.expose().first(crypto::kEd25519SeedBytes));
  } else {
    w.PutU8(kSigningPublicOnly);
    w.Put(keys.signing.public_key);
  }
  PutPsk(w, keys.psk);
  if (keys.previous) {
    w.PutU8(1);
    w.Put(keys.previous->noise.secret_key.expose());
    PutPsk(w, keys.previous->psk);
    w.PutU64(keys.previous->transition_ends);
  } else {
    w.PutU8(0);
  }
  if (keys.statement) {
    auto encoded = protocol::EncodeRelayKeyStatement(*keys.statement);
    if (!encoded) return Error{Errc::kInvalidArgument, "the relay key statement is not valid"};
    w.PutU16(static_cast<std::uint16_t>(encoded->size()));
    w.Put(encoded->expose());
  } else {
    w.PutU16(0);
  }

  const fs::path tmp = dir / (std::string(kRelayKeysFileName) + ".tmp");
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0) return Error{Errc::kIo, "cannot create the relay key file"};
    // A leftover temporary file may have other permissions: force 0600.
    if (::fchmod(fd.get(), 0600) != 0) return Error{Errc::kIo, "cannot create the relay key file"};
    RHIZOME_TRY(WriteAll(fd.get(), w.bytes()));
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

Result<RelayKeys> LoadOrCreateRelayKeys(const fs::path& data_dir, bool closed,
                                        crypto::RandomSource& rng, bool* created) {
  *created = false;
  auto existing = LoadRelayKeys(data_dir);
  if (existing || existing.error().code != Errc::kNotFound) return existing;
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) return Error{Errc::kIo, "cannot create the data directory"};
  ::chmod(data_dir.c_str(), 0700);
  RelayKeys keys;
  keys.noise = crypto::X25519Generate(rng);
  keys.signing = crypto::Ed25519Generate(rng);
  keys.psk = crypto::SecretBytes(kKey);
  if (closed) {
    do {
      rng.Fill(keys.psk.expose_mut());
    } while (protocol::IsAllZero(keys.psk.expose()));
  }
  RHIZOME_TRY(StoreRelayKeys(data_dir, keys));
  *created = true;
  return keys;
}

std::vector<const crypto::X25519KeyPair*> HandshakeStatics(const RelayKeys& keys,
                                                           std::uint64_t now) {
  std::vector<const crypto::X25519KeyPair*> out{&keys.noise};
  if (keys.previous && now < keys.previous->transition_ends &&
      keys.previous->psk.ConstantTimeEquals(keys.psk)) {
    out.push_back(&keys.previous->noise);
  }
  return out;
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
