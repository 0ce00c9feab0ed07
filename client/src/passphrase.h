// Where a passphrase comes from: --passphrase-file, RHIZOME_PASSPHRASE, or a
// prompt on the terminal without echo (DESIGN §13). Passphrases live only in
// SecretBytes.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"

namespace rhizome::client {

inline constexpr const char* kPassphraseEnv = "RHIZOME_PASSPHRASE";
inline constexpr const char* kNewPassphraseEnv = "RHIZOME_NEW_PASSPHRASE";

// Reads a passphrase file: at most storage::kMaxPassphraseBytes bytes, one
// trailing "\n" or "\r\n" removed. Errors: kIo (unreadable), kLimitExceeded,
// kInvalidArgument (empty).
Result<crypto::SecretBytes> ReadPassphraseFile(const std::filesystem::path& path);

// Asks on /dev/tty with echo off. With `confirm`, asks twice and requires a
// match. Errors: kNotFound if there is no terminal; kInvalidArgument if empty
// or the two entries differ; kLimitExceeded if too long.
Result<crypto::SecretBytes> PromptPassphrase(std::string_view prompt, bool confirm);

// File if given, else the environment variable `env_name`, else the prompt.
Result<crypto::SecretBytes> GetPassphrase(const std::optional<std::filesystem::path>& file,
                                          const char* env_name, std::string_view prompt,
                                          bool confirm);

// Asks a yes/no style question on /dev/tty; returns the line typed.
// Errors: kNotFound if there is no terminal.
Result<std::string> PromptLine(std::string_view prompt);

}  // namespace rhizome::client
