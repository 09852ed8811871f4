// Hashing and identities (libsodium).
//
// Digests are BLAKE2b-256. Identities are Ed25519 key pairs; a worker's
// public key is its account. Secret keys live in a non-copyable type that
// wipes its memory on destruction.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/status.h"

namespace cohort {

class CurveKeyPair;  // transport.h

using Digest = std::array<uint8_t, 32>;
using PublicKey = std::array<uint8_t, 32>;
using Signature = std::array<uint8_t, 64>;

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

// 32 bytes from the operating system's CSPRNG (challenge secrets).
Digest random_secret();

std::string to_hex(std::span<const uint8_t> bytes);

// Parses exactly 64 hex digits (either case). Errors: InvalidArgument.
Result<PublicKey> parse_public_key(std::string_view hex);
Result<Digest> parse_digest(std::string_view hex);

// The bytes a signature covers, built field by field: a domain tag first
// (which names the message kind and protocol version, so a signature over
// one kind can never be replayed as another), then fixed-width
// little-endian integers and length-prefixed byte strings. Two different
// field sequences never produce the same bytes.
class CanonicalBytes {
 public:
  explicit CanonicalBytes(std::string_view domain);
  CanonicalBytes& u32(uint32_t value);
  CanonicalBytes& u64(uint64_t value);
  CanonicalBytes& i64(int64_t value);
  CanonicalBytes& f64(double value);  // IEEE-754 bits
  CanonicalBytes& bytes(std::span<const uint8_t> value);
  CanonicalBytes& text(std::string_view value);
  const std::vector<uint8_t>& data() const { return data_; }

 private:
  std::vector<uint8_t> data_;
};

// An Ed25519 key pair. The secret half is wiped on destruction.
class Identity {
 public:
  static Identity generate();
  // The key pair of a 32-byte seed (deterministic; tests and key files).
  static Identity from_seed(std::span<const uint8_t, 32> seed);

  Identity(Identity&& other) noexcept;
  Identity& operator=(Identity&& other) noexcept;
  Identity(const Identity&) = delete;
  Identity& operator=(const Identity&) = delete;
  ~Identity();

  const PublicKey& public_key() const { return public_key_; }
  // Detached Ed25519 signature over `message`.
  Signature sign(std::span<const uint8_t> message) const;

 private:
  Identity() = default;
  friend Status write_key_pair(const Identity& identity, const std::filesystem::path& secret_path);
  friend class CurveKeyPair;  // derives the transport key pair from the secret

  PublicKey public_key_{};
  std::array<uint8_t, 64> secret_key_{};
};

bool verify_signature(const PublicKey& key, std::span<const uint8_t> message,
                      const Signature& signature);

// Key files. `cohort keygen --out NAME` writes NAME.key (the secret seed,
// mode 0600) and NAME.pub (the public key as hex; this is what others are
// told). Both are one line of text.
//
// write_key_pair makes the file's directory if needed, refuses to overwrite
// an existing secret file (FailedPrecondition) and a secret path ending in
// .pub (InvalidArgument); it replaces each file atomically (.pub first), so
// a crash never leaves a torn secret. read_identity refuses what is not a
// regular file of at most 4 KiB (IoError, ResourceExhausted), a public key
// file (FailedPrecondition, naming the .key beside it), a secret file that
// the group or others may read (FailedPrecondition, naming the file and the
// chmod that fixes it), a malformed file (Corruption) and a missing one
// (NotFound). No error echoes a file's bytes.
std::filesystem::path public_key_path(const std::filesystem::path& secret_path);
Status write_key_pair(const Identity& identity, const std::filesystem::path& secret_path);
Result<Identity> read_identity(const std::filesystem::path& secret_path);
// Reads a .pub file, or parses `file_or_hex` itself when it is 64 hex digits.
Result<PublicKey> read_public_key(const std::string& file_or_hex);

}  // namespace cohort
