// NumPy .npy files (format versions 1.0, 2.0 and 3.0) holding little-endian
// float32 or float64 arrays in C order: the exchange format of
// `cohort aggregate` with researchers' own tools.
//
// Reading is strict: a bad magic, an unsupported version, a malformed header
// dictionary, another dtype ('<i4', '>f4', ...), Fortran order, a shape that
// is not a tuple of non-negative integers or that overflows, truncated data
// or trailing bytes are each an error that names the file and the problem
// (never echoing more than a printable excerpt of its bytes). read_npy
// refuses what is not a regular file before reading it. Thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "cohort/protocol.h"
#include "cohort/status.h"

namespace cohort {

struct NpyArray {
  DType dtype = DType::kFloat32;  // kFloat32 or kFloat64
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;      // product(shape) * dtype_size(dtype) bytes

  int64_t numel() const;
};

// Parses the bytes of a .npy file; `origin` names it in errors.
Result<NpyArray> parse_npy(std::span<const uint8_t> bytes, const std::string& origin);

Result<NpyArray> read_npy(const std::filesystem::path& path);

// Serialises as format 1.0 (little-endian, C order).
std::vector<uint8_t> serialize_npy(const NpyArray& array);

// Writes atomically (temporary file + rename).
Status write_npy(const std::filesystem::path& path, const NpyArray& array);

}  // namespace cohort
