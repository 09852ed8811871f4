// Hashing and identities (libsodium).
//
// Digests are BLAKE2b-256. Identities are Ed25519 key pairs; a worker's
// public key is its account. Secret keys live in a non-copyable type that
// wipes its memory on destruction.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "cohort/status.h"

namespace cohort {

using Digest = std::array<uint8_t, 32>;
using PublicKey = std::array<uint8_t, 32>;

// Must be called once (in main or a test) before any other function here;
// idempotent and thread-safe. Returns an error if libsodium cannot start.
Status init_crypto();

// Incremental BLAKE2b-256. Not thread-safe; one instance per hash.
class Hasher {
 public:
  Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void update(std::span<const uint8_t> bytes);
  void update(std::string_view text);
  void update_u64(uint64_t value);  // little-endian, fixed width
  Digest finish();

 private:
  alignas(64) uint8_t state_[384];  // crypto_generichash_state, kept opaque
};

Digest blake2b_256(std::span<const uint8_t> bytes);

std::string to_hex(std::span<const uint8_t> bytes);

// An Ed25519 key pair. The secret half is wiped on destruction.
class Identity {
 public:
  static Identity generate();

  Identity(Identity&& other) noexcept;
  Identity& operator=(Identity&& other) noexcept;
  Identity(const Identity&) = delete;
  Identity& operator=(const Identity&) = delete;
  ~Identity();

  const PublicKey& public_key() const { return public_key_; }

 private:
  Identity() = default;

  PublicKey public_key_{};
  std::array<uint8_t, 64> secret_key_{};
};

}  // namespace cohort
