#include "cohort/crypto.h"

#include <sodium.h>
#include <sys/stat.h>

#include <cctype>
#include <cstring>

#include "cohort/durable_file.h"

namespace cohort {

static_assert(sizeof(crypto_generichash_state) <= 384, "Hasher::state_ too small");

Status init_crypto() {
  if (sodium_init() < 0) return Status::internal("libsodium failed to initialise");
  return Status();
}

Hasher::Hasher() {
  crypto_generichash_init(reinterpret_cast<crypto_generichash_state*>(state_), nullptr, 0,
                          crypto_generichash_BYTES);
}

void Hasher::update(std::span<const uint8_t> bytes) {
  crypto_generichash_update(reinterpret_cast<crypto_generichash_state*>(state_), bytes.data(),
                            bytes.size());
}

void Hasher::update(std::string_view text) {
  update_u64(text.size());  // length prefix keeps concatenations unambiguous
  update({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

void Hasher::update_u64(uint64_t value) {
  uint8_t le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<uint8_t>(value >> (8 * i));
  update(le);
}

Digest Hasher::finish() {
  Digest out;
  crypto_generichash_final(reinterpret_cast<crypto_generichash_state*>(state_), out.data(),
                           out.size());
  return out;
}

Digest blake2b_256(std::span<const uint8_t> bytes) {
  Hasher hasher;
  hasher.update(bytes);
  return hasher.finish();
}

Digest random_secret() {
  Digest secret;
  randombytes_buf(secret.data(), secret.size());
  return secret;
}

std::string to_hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

Identity Identity::generate() {
  Identity id;
  crypto_sign_keypair(id.public_key_.data(), id.secret_key_.data());
  return id;
}

Identity::Identity(Identity&& other) noexcept
    : public_key_(other.public_key_), secret_key_(other.secret_key_) {
  sodium_memzero(other.secret_key_.data(), other.secret_key_.size());
}

Identity& Identity::operator=(Identity&& other) noexcept {
  if (this != &other) {
    public_key_ = other.public_key_;
    secret_key_ = other.secret_key_;
    sodium_memzero(other.secret_key_.data(), other.secret_key_.size());
  }
  return *this;
}

Identity::~Identity() { sodium_memzero(secret_key_.data(), secret_key_.size()); }

namespace {

constexpr std::string_view kSecretKeyHeader = "cohort-ed25519-secret-key-v1";

template <size_t N>
Result<std::array<uint8_t, N>> parse_hex(std::string_view hex, std::string_view what) {
  std::array<uint8_t, N> out{};
  size_t written = 0;
  if (hex.size() != 2 * N) {
    return Status::invalid_argument(std::string(what) + " must be " + std::to_string(2 * N) + " hex digits, got " +
                                    std::to_string(hex.size()) + " characters");
  }
  // The text is not echoed: it may come from a file, and be anything.
  if (sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &written, nullptr) != 0 ||
      written != N) {
    return Status::invalid_argument(std::string(what) + " must be " + std::to_string(2 * N) +
                                    " hex digits, got characters that are not hex digits");
  }
  return out;
}

std::string trimmed(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

// Key files are one short line; anything longer is not one.
constexpr uint64_t kMaxKeyFileBytes = 4096;

Result<std::string> read_key_file(const std::filesystem::path& path) {
  Result<std::string> text = read_regular_file(path, kMaxKeyFileBytes, "a key file");
  if (text.status().code() == Status::Code::kNotFound) return Status::not_found("no key file " + path.string());
  return text;
}

// Group or others may read the secret key file: FailedPrecondition with the fix.
Status check_private(const std::filesystem::path& secret_path) {
  struct stat info {};
  if (::stat(secret_path.c_str(), &info) != 0) return Status::not_found("no key file " + secret_path.string());
  if ((info.st_mode & 077) == 0) return Status();
  return Status::failed_precondition(secret_path.string() + " is readable by others; run `chmod 600 " +
                                     secret_path.string() + "` (or make a new key with `cohort keygen`)");
}

}  // namespace

Result<PublicKey> parse_public_key(std::string_view hex) { return parse_hex<32>(hex, "a public key"); }
Result<Digest> parse_digest(std::string_view hex) { return parse_hex<32>(hex, "a digest"); }

CanonicalBytes::CanonicalBytes(std::string_view domain) { text(domain); }

CanonicalBytes& CanonicalBytes::u32(uint32_t value) {
  for (int i = 0; i < 4; ++i) data_.push_back(static_cast<uint8_t>(value >> (8 * i)));
  return *this;
}

CanonicalBytes& CanonicalBytes::u64(uint64_t value) {
  for (int i = 0; i < 8; ++i) data_.push_back(static_cast<uint8_t>(value >> (8 * i)));
  return *this;
}

CanonicalBytes& CanonicalBytes::i64(int64_t value) { return u64(static_cast<uint64_t>(value)); }

CanonicalBytes& CanonicalBytes::f64(double value) {
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(bits));
  return u64(bits);
}

CanonicalBytes& CanonicalBytes::bytes(std::span<const uint8_t> value) {
  u64(value.size());
  data_.insert(data_.end(), value.begin(), value.end());
  return *this;
}

CanonicalBytes& CanonicalBytes::text(std::string_view value) {
  return bytes({reinterpret_cast<const uint8_t*>(value.data()), value.size()});
}

Identity Identity::from_seed(std::span<const uint8_t, 32> seed) {
  Identity id;
  crypto_sign_seed_keypair(id.public_key_.data(), id.secret_key_.data(), seed.data());
  return id;
}

Signature Identity::sign(std::span<const uint8_t> message) const {
  Signature signature{};
  crypto_sign_detached(signature.data(), nullptr, message.data(), message.size(), secret_key_.data());
  return signature;
}

bool verify_signature(const PublicKey& key, std::span<const uint8_t> message,
                      const Signature& signature) {
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(), key.data()) == 0;
}

std::filesystem::path public_key_path(const std::filesystem::path& secret_path) {
  std::filesystem::path pub = secret_path;
  return pub.replace_extension(".pub");
}

Status write_key_pair(const Identity& identity, const std::filesystem::path& secret_path) {
  if (std::filesystem::exists(secret_path)) {
    return Status::failed_precondition(secret_path.string() + " already exists; refusing to overwrite a secret key");
  }
  if (secret_path.extension() == ".pub") {
    return Status::invalid_argument(secret_path.string() + " ends in .pub, the public key's name; name the secret "
                                    "key file (e.g. " + std::filesystem::path(secret_path).replace_extension(".key").string() + ")");
  }
  if (secret_path.has_parent_path()) {
    std::error_code error;
    std::filesystem::create_directories(secret_path.parent_path(), error);
    if (error) {
      return Status::io_error("cannot make the directory " + secret_path.parent_path().string() + ": " +
                              error.message());
    }
  }
  // The seed is the first half of libsodium's 64-byte secret key.
  std::array<uint8_t, 32> seed{};
  crypto_sign_ed25519_sk_to_seed(seed.data(), identity.secret_key_.data());
  std::string line = std::string(kSecretKeyHeader) + " " + to_hex(seed) + "\n";
  sodium_memzero(seed.data(), seed.size());
  // Both files are replaced atomically (durable_file.h), the public one
  // first: a crash leaves no key, or a stray .pub that the next attempt
  // replaces, or both whole, never a torn secret.
  const std::string pub_line = to_hex(identity.public_key()) + "\n";
  const std::string_view pub_parts[] = {pub_line};
  COHORT_RETURN_IF_ERROR(write_file_atomically(public_key_path(secret_path), pub_parts));
  // Created 0600 from the start: the secret is never readable by others.
  const mode_t old_mask = ::umask(077);
  const std::string_view secret_parts[] = {line};
  Status written = write_file_atomically(secret_path, secret_parts);
  ::umask(old_mask);
  sodium_memzero(line.data(), line.size());
  return written;
}

Result<Identity> read_identity(const std::filesystem::path& secret_path) {
  COHORT_ASSIGN_OR_RETURN(std::string text, read_key_file(secret_path));
  text = trimmed(std::move(text));
  const std::string prefix = std::string(kSecretKeyHeader) + " ";
  if (text.rfind(prefix, 0) != 0) {
    const bool public_key = parse_public_key(text).ok();
    sodium_memzero(text.data(), text.size());
    if (public_key) {
      return Status::failed_precondition(
          secret_path.string() + " holds a public key; the secret key file is needed (`cohort keygen --out " +
          "NAME.key` writes both: try " + std::filesystem::path(secret_path).replace_extension(".key").string() + ")");
    }
    return Status::corruption(secret_path.string() + " is not a cohort secret key file");
  }
  if (Status is_private = check_private(secret_path); !is_private.ok()) {
    sodium_memzero(text.data(), text.size());
    return is_private;
  }
  Result<std::array<uint8_t, 32>> seed = parse_hex<32>(std::string_view(text).substr(prefix.size()), "the secret key");
  sodium_memzero(text.data(), text.size());
  if (!seed.ok()) return Status::corruption(secret_path.string() + ": " + seed.status().message());
  Identity identity = Identity::from_seed(*seed);
  sodium_memzero(seed->data(), seed->size());
  return identity;
}

Result<PublicKey> read_public_key(const std::string& file_or_hex) {
  if (file_or_hex.size() == 64 && !std::filesystem::exists(file_or_hex)) return parse_public_key(file_or_hex);
  Result<std::string> read = read_key_file(file_or_hex);
  if (read.status().code() == Status::Code::kNotFound) {
    return Status::not_found("'" + file_or_hex + "' is neither 64 hex digits nor a .pub file (" +
                             read.status().message() + ")");
  }
  COHORT_ASSIGN_OR_RETURN(std::string text, std::move(read));
  Result<PublicKey> key = parse_public_key(trimmed(std::move(text)));
  if (!key.ok()) return Status::corruption(file_or_hex + ": " + key.status().message());
  return key;
}

}  // namespace cohort
