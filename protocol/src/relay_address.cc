#include "rhizome/protocol/relay_address.h"

#include <algorithm>

#include "base32.h"
#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/sign.h"
#include "text_util.h"

namespace rhizome::protocol {

namespace {

constexpr std::string_view kChecksumLabel = "rhizome/v1/relay-address-checksum";
constexpr std::size_t kKeyBlockBytes = 2 * kKeyBytes + kRelayAddressChecksumBytes;
constexpr std::size_t kKeyBlockChars = internal::Base32EncodedSize(kKeyBlockBytes);
constexpr std::size_t kPskChars = internal::Base32EncodedSize(kRelayPskBytes);

Error Malformed(const char* message) { return Error{Errc::kMalformed, message}; }

// Splits "host:port" or "[v6]:port".
Status ParseAuthority(std::string_view authority, RelayAddress& out) {
  std::string_view host;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return Malformed("relay address has an unclosed '['");
    host = authority.substr(1, close - 1);
    if (host.find(':') == std::string_view::npos) {
      return Malformed("relay address brackets hold no IPv6 address");
    }
    std::string_view rest = authority.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return Malformed("relay address has no port");
    port = rest.substr(1);
  } else {
    const std::size_t colon = authority.find(':');
    if (colon == std::string_view::npos) return Malformed("relay address has no port");
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.find(':') != std::string_view::npos) {
      return Malformed("relay address IPv6 host must be in brackets");
    }
  }
  auto normal = NormalizeHost(host);
  if (!normal) return Malformed("relay address has a bad host");
  out.host = std::move(normal).value();
  auto port_value = internal::ParseDecimal(port, 65535);
  if (!port_value || *port_value == 0) return Malformed("relay address has a bad port");
  out.port = static_cast<std::uint16_t>(*port_value);
  return {};
}

Status ParseVersions(std::string_view text, std::vector<std::uint16_t>& out) {
  out.clear();
  std::size_t start = 0;
  while (true) {
    if (out.size() == kMaxVersions) {
      return Error{Errc::kLimitExceeded, "version list has too many entries"};
    }
    std::size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    auto v = internal::ParseDecimal(text.substr(start, end - start), 65535);
    if (!v) return Malformed("relay address has a bad version");
    out.push_back(static_cast<std::uint16_t>(*v));
    if (end == text.size()) break;
    start = end + 1;
  }
  return {};
}

Status ParseQuery(std::string_view query, RelayAddress& out) {
  bool have_v = false;
  bool have_psk = false;
  std::size_t start = 0;
  while (true) {
    std::size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view param = query.substr(start, end - start);
    const std::size_t eq = param.find('=');
    if (eq == std::string_view::npos) return Malformed("relay address parameter has no '='");
    const std::string_view name = param.substr(0, eq);
    const std::string_view value = param.substr(eq + 1);
    if (name == "v") {
      if (have_v) return Malformed("relay address repeats a parameter");
      have_v = true;
      RHIZOME_TRY(ParseVersions(value, out.versions));
    } else if (name == "psk") {
      if (have_psk) return Malformed("relay address repeats a parameter");
      have_psk = true;
      if (value.size() != kPskChars) return Malformed("relay address psk has the wrong size");
      auto psk = internal::Base32Decode(value);
      if (!psk || psk->size() != kRelayPskBytes) return Malformed("relay address psk is bad base32");
      out.psk = crypto::SecretBytes::CopyFrom(*psk);
      crypto::Wipe(*psk);
    } else {
      return Error{Errc::kUnsupported, "relay address has an unknown parameter"};
    }
    if (end == query.size()) break;
    start = end + 1;
  }
  if (!have_v) return Malformed("relay address has no version parameter");
  return {};
}

}  // namespace

RelayAddress RelayAddress::Clone() const {
  RelayAddress copy;
  copy.noise_key = noise_key;
  copy.signing_key = signing_key;
  copy.host = host;
  copy.port = port;
  copy.versions = versions;
  copy.psk = psk.Clone();
  return copy;
}

ByteArray<kRelayAddressChecksumBytes> RelayAddressChecksum(const PublicKey& noise_key,
                                                           const PublicKey& signing_key) {
  crypto::Blake2b h(crypto::kBlake2b256Bytes);
  h.Update(AsBytes(kChecksumLabel)).Update(noise_key).Update(signing_key);
  ByteArray<crypto::kBlake2b256Bytes> digest;
  h.Final(digest);
  ByteArray<kRelayAddressChecksumBytes> out;
  std::copy_n(digest.begin(), out.size(), out.begin());
  return out;
}

Status ValidateRelayAddress(const RelayAddress& address) {
  if (IsAllZero(address.noise_key)) return Malformed("relay noise key is all zeros");
  if (!crypto::Ed25519IsStrictPublicKey(address.signing_key)) {
    return Malformed("relay signing key is not a valid Ed25519 key");
  }
  if (!IsCanonicalHost(address.host)) return Malformed("relay address has a bad host");
  if (address.port == 0) return Malformed("relay address has a bad port");
  RHIZOME_TRY(ValidateVersionList(address.versions));
  if (!address.psk.empty()) {
    if (address.psk.size() != kRelayPskBytes) return Malformed("relay psk is not 32 bytes");
    if (IsAllZero(address.psk.expose())) {
      return Malformed("relay psk is all zeros (an open relay has no psk)");
    }
  }
  return {};
}

Result<RelayAddress> ParseRelayAddress(std::string_view text) {
  if (text.size() > kMaxRelayAddressChars) {
    return Error{Errc::kLimitExceeded, "relay address is too long"};
  }
  const std::string clean = internal::StripAsciiWhitespace(text);
  if (!internal::StartsWithIgnoreCase(clean, kRelayAddressScheme)) {
    return Malformed("not a rhizome-relay:// address");
  }
  std::string_view rest = std::string_view(clean).substr(kRelayAddressScheme.size());
  const std::size_t at = rest.find('@');
  if (at == std::string_view::npos) return Malformed("relay address has no '@'");
  const std::string_view keys_text = rest.substr(0, at);
  rest = rest.substr(at + 1);

  RelayAddress out;
  if (keys_text.size() != kKeyBlockChars) return Malformed("relay address keys have the wrong size");
  auto keys = internal::Base32Decode(keys_text);
  if (!keys || keys->size() != kKeyBlockBytes) return Malformed("relay address keys are bad base32");
  std::copy_n(keys->begin(), kKeyBytes, out.noise_key.begin());
  std::copy_n(keys->begin() + kKeyBytes, kKeyBytes, out.signing_key.begin());
  const auto checksum = RelayAddressChecksum(out.noise_key, out.signing_key);
  if (!std::equal(checksum.begin(), checksum.end(), keys->begin() + 2 * kKeyBytes)) {
    return Malformed("relay address checksum mismatch");
  }

  const std::size_t question = rest.find('?');
  if (question == std::string_view::npos) return Malformed("relay address has no version parameter");
  RHIZOME_TRY(ParseAuthority(rest.substr(0, question), out));
  RHIZOME_TRY(ParseQuery(rest.substr(question + 1), out));
  RHIZOME_TRY(ValidateRelayAddress(out));
  return out;
}

Result<std::string> FormatRelayAddress(const RelayAddress& address) {
  RHIZOME_TRY(ValidateRelayAddress(address));
  Bytes keys;
  keys.reserve(kKeyBlockBytes);
  Append(keys, address.noise_key);
  Append(keys, address.signing_key);
  Append(keys, RelayAddressChecksum(address.noise_key, address.signing_key));
  std::string out(kRelayAddressScheme);
  out += internal::Base32Encode(keys);
  out += '@';
  if (address.host.find(':') != std::string::npos) {
    out += '[';
    out += address.host;
    out += ']';
  } else {
    out += address.host;
  }
  out += ':';
  out += std::to_string(address.port);
  out += "?v=";
  for (std::size_t i = 0; i < address.versions.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(address.versions[i]);
  }
  if (!address.psk.empty()) {
    out += "&psk=";
    out += internal::Base32Encode(address.psk.expose());
  }
  return out;
}

}  // namespace rhizome::protocol
