// Small text helpers for the pasteable formats. Private to the protocol module.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rhizome::protocol::internal {

// `text` without ASCII whitespace (space, \t, \n, \v, \f, \r).
std::string StripAsciiWhitespace(std::string_view text);

// True iff `text` starts with `prefix`, ASCII case-insensitively.
bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix);

// A decimal number without sign or leading zeros (except "0"), at most `max`.
std::optional<std::uint32_t> ParseDecimal(std::string_view text, std::uint32_t max);

}  // namespace rhizome::protocol::internal
