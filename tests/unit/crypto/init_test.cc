// Library initialisation for the whole crypto test binary, and its contract.
//
// The environment below runs crypto::Init() once before any test of
// crypto_unit_tests (SecretBytes needs libsodium initialised).
#include <gtest/gtest.h>

#include "rhizome/crypto/init.h"
#include "rhizome/crypto/result.h"

namespace rhizome::crypto {
namespace {

class CryptoEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { ASSERT_TRUE(Init().ok()) << "libsodium failed to initialise"; }
};

[[maybe_unused]] ::testing::Environment* const kCryptoEnvironment =
    ::testing::AddGlobalTestEnvironment(new CryptoEnvironment);

TEST(CryptoInit, IsIdempotent) {
  EXPECT_TRUE(Init().ok());
  EXPECT_TRUE(Init().ok());
}

TEST(ErrcName, EveryCodeHasAName) {
  for (Errc code : {Errc::kInvalidArgument, Errc::kMalformed, Errc::kAuthenticationFailed,
                    Errc::kWrongPassphrase, Errc::kNotFound, Errc::kAlreadyExists, Errc::kIo,
                    Errc::kCorrupt, Errc::kLimitExceeded, Errc::kUnsupported,
                    Errc::kCryptoFailure, Errc::kInternal}) {
    const char* name = ErrcName(code);
    ASSERT_NE(name, nullptr);
    EXPECT_STRNE(name, "unknown error");
  }
  EXPECT_STREQ(ErrcName(Errc::kAuthenticationFailed), "authentication failed");
}

}  // namespace
}  // namespace rhizome::crypto
