// Safety numbers (DESIGN §4): 60 digits compared in person.
//
// Each party's half is 30 digits from an iterated SHA-512 of its identity key
// (as Signal's numeric fingerprint, 5200 iterations); the two halves are
// sorted and concatenated, so both sides compute the same string. The exact
// construction is in docs/protocol/safety-number.md.
// Thread safety: pure functions.
#pragma once

#include <string>

#include "rhizome/crypto/bytes.h"

namespace rhizome::crypto {

inline constexpr int kSafetyNumberIterations = 5200;

// 30 decimal digits for one identity public key (32 bytes).
// Errors: kInvalidArgument if the key is not 32 bytes.
Result<std::string> SafetyCode(ByteSpan identity_public_key);

// 60 digits: both halves, sorted. Errors: as SafetyCode.
Result<std::string> SafetyNumber(ByteSpan identity_a, ByteSpan identity_b);

// "12345 67890 ..." groups of five for display.
std::string GroupDigits(std::string_view digits);

}  // namespace rhizome::crypto
