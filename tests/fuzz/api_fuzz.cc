// Fuzz target: the local API (client/src/api.h, docs/api.md), the JSON lines a
// script or the command line sends to `rhizome daemon`'s socket.
//
// Input: up to kMaxLines request lines separated by '\n'. Each goes through
// capi::ParseRequest; what parses is executed with capi::Execute on a real
// profile (a copy of one made once per process, on tmpfs when there is one)
// whose relays and peers are unreachable (the connectors fail at once), and
// the response goes through FormatResponse and back through ParseResponse.
// Invariants (abort on violation):
// - a line above kMaxApiLineBytes is refused with kLimitExceeded, unparsed;
// - every response formats to one line that parses back, with the request's id;
// - an error response's message never contains a string the request carried
//   (names, texts, codes, addresses: error text is static, DESIGN §3), for
//   strings that cannot occur in a fixed sentence by chance (Distinctive);
// - nothing crashes, leaks or reads out of bounds (ASan/UBSan in the fuzz build).
// Corpus: tests/fuzz/corpus/api/.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api.h"
#include "rhizome/client/messenger.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/identity.h"
#include "rhizome/storage/identity_store.h"
#include "rhizome/storage/profile.h"

namespace {

using namespace rhizome;
namespace fs = std::filesystem;
namespace capi = client::api;

constexpr std::size_t kMaxLines = 8;
const ByteSpan kPass = AsBytes("api-fuzz");

#define FUZZ_CHECK(cond)                                              \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::fprintf(stderr, "api fuzz: check failed: %s (line %d)\n", #cond, __LINE__); \
      std::abort();                                                   \
    }                                                                 \
  } while (0)

// A string that no fixed error sentence contains by chance: long enough and
// with a character that none of them uses (checked over every Error message in
// the sources), so finding it in an error means the error echoed input.
bool Distinctive(std::string_view s) {
  if (s.size() < 6) return false;
  for (unsigned char c : s) {
    if (c >= 0x80 || std::string_view("{}|~^\\<>$#%&*").find(static_cast<char>(c)) != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

// The string fields a request carries (what an error must never echo).
void CollectStrings(const google::protobuf::Message& m, std::vector<std::string>& out) {
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (f->is_repeated()) continue;
    if (f->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
      std::string v = r->GetString(m, f);
      if (!v.empty()) out.push_back(std::move(v));
    } else if (f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE && r->HasField(m, f)) {
      CollectStrings(r->GetMessage(m, f), out);
    }
  }
}

// A profile with an identity, made once; each input runs on a fresh copy.
const fs::path& Template() {
  static const fs::path dir = [] {
    std::string templ = fs::exists("/dev/shm") ? "/dev/shm/rhizome-api-fuzz-XXXXXX"
                                               : "/tmp/rhizome-api-fuzz-XXXXXX";
    FUZZ_CHECK(mkdtemp(templ.data()) != nullptr);
    const fs::path root = templ;
    auto& rng = crypto::SystemRandom();
    auto p = storage::Profile::Create(root / "template", kPass, crypto::Argon2idParams{1, 8192}, rng);
    FUZZ_CHECK(p.ok());
    auto id = protocol::GenerateIdentity("Api Fuzz", rng);
    FUZZ_CHECK(id.ok());
    FUZZ_CHECK(storage::SaveIdentity(p->db(), *id).ok());
    return root;
  }();
  return dir;
}

// Removes the process's profiles at exit. Holds its own copy of the path:
// statics are destroyed in reverse order of construction.
struct Cleanup {
  fs::path root;
  ~Cleanup() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool ready = crypto::Init().ok();
  FUZZ_CHECK(ready);
  const fs::path root = Template();
  static Cleanup cleanup{root};
  const fs::path work = root / "work";
  std::error_code ec;
  fs::remove_all(work, ec);
  fs::copy(root / "template", work, fs::copy_options::recursive, ec);
  FUZZ_CHECK(!ec);

  std::optional<storage::Profile> profile;
  {
    auto p = storage::Profile::Open(work, kPass);
    FUZZ_CHECK(p.ok());
    profile.emplace(std::move(*p));
  }
  auto refuse = [](const protocol::RelayAddress&, std::uint64_t, std::chrono::milliseconds)
      -> Result<std::unique_ptr<client::RelayPort>> { return Error{Errc::kIo, "unreachable"}; };
  auto m = client::Messenger::Open(*profile, crypto::SystemRandom(), refuse,
                                   [] { return std::uint64_t{1'800'000'000}; });
  FUZZ_CHECK(m.ok());
  m->SetPeerConnector([](const client::PeerTarget&, const crypto::X25519KeyPair&,
                         std::chrono::milliseconds) -> Result<std::unique_ptr<client::PeerPort>> {
    return Error{Errc::kIo, "unreachable"};
  });

  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t pos = 0;
  for (std::size_t n = 0; n < kMaxLines && pos <= input.size(); ++n) {
    const auto nl = input.find('\n', pos);
    const std::string_view line =
        input.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? input.size() + 1 : nl + 1;
    auto req = capi::ParseRequest(line);
    if (line.size() > capi::kMaxApiLineBytes) {
      FUZZ_CHECK(!req.ok() && req.error().code == Errc::kLimitExceeded);
      continue;
    }
    if (!req) continue;
    const capi::v1::Response response = capi::Execute(*m, *req);
    const std::string out = capi::FormatResponse(response);
    FUZZ_CHECK(out.find('\n') == std::string::npos);
    auto back = capi::ParseResponse(out);
    FUZZ_CHECK(back.ok());
    FUZZ_CHECK(back->id() == req->id());
    if (response.has_error()) {
      std::vector<std::string> carried;
      CollectStrings(*req, carried);
      for (const auto& s : carried) {
        if (!Distinctive(s)) continue;
        FUZZ_CHECK(response.error().message().find(s) == std::string::npos);
      }
    }
  }
  return 0;
}
