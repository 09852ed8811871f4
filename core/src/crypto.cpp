#include "cohort/crypto.h"

#include <sodium.h>

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

}  // namespace cohort
