#include "cohort/crypto.h"
#include "cohort/receipt.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace cohort {
namespace {

std::vector<uint8_t> bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

class CryptoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(init_crypto().ok());
    dir_ = std::filesystem::temp_directory_path() /
           ("cohort-crypto-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(CryptoTest, SignatureVerifiesOnlyForTheSignedBytesAndKey) {
  Identity alice = Identity::generate();
  Identity bob = Identity::generate();
  const auto message = bytes_of("round 3, task 7");
  const Signature signature = alice.sign(message);
  EXPECT_TRUE(verify_signature(alice.public_key(), message, signature));
  EXPECT_FALSE(verify_signature(bob.public_key(), message, signature));
  auto tampered = message;
  tampered.back() ^= 1;
  EXPECT_FALSE(verify_signature(alice.public_key(), tampered, signature));
  Signature bad = signature;
  bad[10] ^= 0x40;
  EXPECT_FALSE(verify_signature(alice.public_key(), message, bad));
}

TEST_F(CryptoTest, SeedDeterminesTheKeyPair) {
  std::array<uint8_t, 32> seed{};
  seed[0] = 7;
  EXPECT_EQ(Identity::from_seed(seed).public_key(), Identity::from_seed(seed).public_key());
  seed[0] = 8;
  std::array<uint8_t, 32> other{};
  EXPECT_NE(Identity::from_seed(seed).public_key(), Identity::from_seed(other).public_key());
}

TEST_F(CryptoTest, CanonicalBytesSeparateDomainsAndFieldBoundaries) {
  EXPECT_NE(CanonicalBytes("a").text("bc").data(), CanonicalBytes("ab").text("c").data());
  EXPECT_NE(CanonicalBytes("x").u32(1).data(), CanonicalBytes("x").u64(1).data());
  EXPECT_EQ(CanonicalBytes("x").u64(0x0102).data().size(), 8u + 1u + 8u);
  // Little-endian, fixed width.
  const std::vector<uint8_t> data = CanonicalBytes("").u32(0x01020304).data();
  EXPECT_EQ(std::vector<uint8_t>(data.end() - 4, data.end()), (std::vector<uint8_t>{4, 3, 2, 1}));
}

TEST_F(CryptoTest, KeyFilesRoundTripWithAPrivateSecretFile) {
  Identity identity = Identity::generate();
  const auto secret = dir_ / "worker.key";
  ASSERT_TRUE(write_key_pair(identity, secret).ok());
  struct stat info {};
  ASSERT_EQ(::stat(secret.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  Result<Identity> loaded = read_identity(secret);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_EQ(loaded->public_key(), identity.public_key());
  const auto message = bytes_of("x");
  EXPECT_TRUE(verify_signature(identity.public_key(), message, loaded->sign(message)));
  Result<PublicKey> pub = read_public_key(public_key_path(secret).string());
  ASSERT_TRUE(pub.ok()) << pub.status().to_string();
  EXPECT_EQ(*pub, identity.public_key());
  Result<PublicKey> from_hex = read_public_key(to_hex(identity.public_key()));
  ASSERT_TRUE(from_hex.ok());
  EXPECT_EQ(*from_hex, identity.public_key());
}

TEST_F(CryptoTest, RefusesToOverwriteASecretKey) {
  const auto secret = dir_ / "worker.key";
  ASSERT_TRUE(write_key_pair(Identity::generate(), secret).ok());
  Status again = write_key_pair(Identity::generate(), secret);
  EXPECT_EQ(again.code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(again.message().find("refusing to overwrite"), std::string::npos);
}

TEST_F(CryptoTest, RefusesASecretFileOthersCanRead) {
  const auto secret = dir_ / "worker.key";
  ASSERT_TRUE(write_key_pair(Identity::generate(), secret).ok());
  std::filesystem::permissions(secret, std::filesystem::perms::group_read, std::filesystem::perm_options::add);
  Result<Identity> loaded = read_identity(secret);
  EXPECT_EQ(loaded.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(loaded.status().message().find("chmod 600"), std::string::npos);
}

TEST_F(CryptoTest, MalformedOrMissingKeyFilesAreNamedErrors) {
  EXPECT_EQ(read_identity(dir_ / "absent.key").status().code(), Status::Code::kNotFound);
  const auto bad = dir_ / "bad.key";
  std::ofstream(bad) << "cohort-ed25519-secret-key-v1 00zz\n";
  std::filesystem::permissions(bad, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::replace);
  EXPECT_EQ(read_identity(bad).status().code(), Status::Code::kCorruption);
  EXPECT_FALSE(parse_public_key("abcd").ok());
  EXPECT_FALSE(read_public_key((dir_ / "nothing.pub").string()).ok());
}

TEST_F(CryptoTest, ReceiptVerifiesOnlyUntouched) {
  Identity coordinator = Identity::generate();
  Receipt receipt;
  receipt.round = 2;
  receipt.task_id = 9;
  receipt.verdict = Verdict::kPassed;
  receipt.reward = 1'500'000;
  receipt.coordinator = coordinator.public_key();
  receipt.signature = coordinator.sign(receipt.signed_bytes());
  EXPECT_TRUE(verify_receipt(receipt));
  Receipt richer = receipt;
  richer.reward += 1;
  EXPECT_FALSE(verify_receipt(richer));
  Receipt other_verdict = receipt;
  other_verdict.verdict = Verdict::kUnaudited;
  EXPECT_FALSE(verify_receipt(other_verdict));
  Receipt forged = receipt;
  forged.coordinator = Identity::generate().public_key();
  EXPECT_FALSE(verify_receipt(forged));
  EXPECT_EQ(verdict_name(Verdict::kVoided), "voided");
}

}  // namespace
}  // namespace cohort
