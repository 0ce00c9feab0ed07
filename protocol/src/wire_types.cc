#include "rhizome/protocol/wire_types.h"

#include <arpa/inet.h>

#include <algorithm>

#include "rhizome/protocol/version.h"

namespace rhizome::protocol {

namespace {

constexpr std::size_t kMaxLabelBytes = 63;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char ToLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Strict dotted quad: exactly four parts, 1..3 digits, 0..255, no leading zeros.
bool IsStrictIpv4(std::string_view s) {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t start = i;
    unsigned value = 0;
    while (i < s.size() && IsDigit(s[i]) && i - start < 4) {
      value = value * 10 + static_cast<unsigned>(s[i] - '0');
      ++i;
    }
    const std::size_t len = i - start;
    if (len == 0 || len > 3 || value > 255 || (len > 1 && s[start] == '0')) return false;
    ++parts;
    if (i == s.size()) break;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
  return parts == 4;
}

bool IsDnsName(std::string_view s) {
  std::size_t start = 0;
  bool last_all_digits = false;
  while (true) {
    std::size_t end = s.find('.', start);
    if (end == std::string_view::npos) end = s.size();
    std::string_view label = s.substr(start, end - start);
    if (label.empty() || label.size() > kMaxLabelBytes) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    last_all_digits = true;
    for (char c : label) {
      if (!IsDigit(c) && !IsAlpha(c) && c != '-') return false;
      if (!IsDigit(c)) last_all_digits = false;
    }
    if (end == s.size()) break;
    start = end + 1;
  }
  // A name whose last label is numeric would read as a (malformed) IPv4 address.
  return !last_all_digits;
}

}  // namespace

Result<std::string> NormalizeHost(std::string_view host) {
  const Error bad{Errc::kMalformed, "bad host"};
  if (host.empty() || host.size() > kMaxHostBytes) return bad;
  if (host.find(':') != std::string_view::npos) {
    // IPv6. inet_pton needs a NUL-terminated string; zone ids ('%') are refused.
    if (host.find('%') != std::string_view::npos) return bad;
    std::string copy(host);
    in6_addr addr{};
    if (inet_pton(AF_INET6, copy.c_str(), &addr) != 1) return bad;
    char text[INET6_ADDRSTRLEN] = {};
    if (inet_ntop(AF_INET6, &addr, text, sizeof text) == nullptr) return bad;
    return std::string(text);
  }
  if (std::all_of(host.begin(), host.end(), [](char c) { return IsDigit(c) || c == '.'; })) {
    if (!IsStrictIpv4(host)) return bad;
    return std::string(host);
  }
  if (!IsDnsName(host)) return bad;
  std::string lower(host);
  std::transform(lower.begin(), lower.end(), lower.begin(), ToLower);
  return lower;
}

bool IsCanonicalHost(std::string_view host) {
  auto normal = NormalizeHost(host);
  return normal.ok() && *normal == host;
}

Status ValidateDirectAddress(const DirectAddress& address) {
  if (!IsCanonicalHost(address.host)) return Error{Errc::kMalformed, "bad host"};
  if (address.port == 0) return Error{Errc::kMalformed, "port is 0"};
  return {};
}

Result<DirectAddress> ParseDirectAddress(std::string_view text) {
  if (text.size() > kMaxDirectAddressTextBytes) {
    return Error{Errc::kLimitExceeded, "direct address is too long"};
  }
  constexpr Error kBadForm{Errc::kMalformed, "direct address must be HOST:PORT"};
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= text.size()) {
    return kBadForm;
  }
  std::string_view host = text.substr(0, colon);
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return kBadForm;  // an IPv6 host needs brackets: "[::1]:7000"
  }
  std::uint32_t port = 0;
  const std::string_view digits = text.substr(colon + 1);
  if (digits.size() > 5 || (digits.size() > 1 && digits.front() == '0')) return kBadForm;
  for (char c : digits) {
    if (c < '0' || c > '9') return kBadForm;
    port = port * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (port == 0 || port > 65535) return kBadForm;
  auto canonical = NormalizeHost(host);
  if (!canonical) return canonical.error();
  if (bracketed != (canonical->find(':') != std::string::npos)) return kBadForm;
  return DirectAddress{std::move(*canonical), static_cast<std::uint16_t>(port)};
}

std::string FormatDirectAddress(const DirectAddress& address) {
  std::string out;
  if (address.host.find(':') != std::string::npos) {
    out = "[" + address.host + "]";
  } else {
    out = address.host;
  }
  return out + ":" + std::to_string(address.port);
}

Status ValidateVersionList(std::span<const std::uint16_t> versions) {
  if (versions.empty()) return Error{Errc::kMalformed, "version list is empty"};
  if (versions.size() > kMaxVersions) {
    return Error{Errc::kLimitExceeded, "version list has too many entries"};
  }
  for (std::size_t i = 0; i < versions.size(); ++i) {
    if (versions[i] == 0) return Error{Errc::kMalformed, "version 0 in version list"};
    if (i > 0 && versions[i] <= versions[i - 1]) {
      return Error{Errc::kMalformed, "version list is not strictly ascending"};
    }
  }
  if (HighestCommonVersion(versions.data(), versions.size()) == 0) {
    return Error{Errc::kUnsupported, "no common wire version"};
  }
  return {};
}

bool IsAllZero(ByteSpan bytes) noexcept {
  std::uint8_t acc = 0;
  for (std::uint8_t b : bytes) acc = static_cast<std::uint8_t>(acc | b);
  return acc == 0;
}

}  // namespace rhizome::protocol
