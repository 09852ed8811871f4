#include "cohort/npy.h"

#include <cstring>
#include <fstream>
#include <limits>
#include <string_view>

#include "cohort/durable_file.h"

namespace cohort {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr uint64_t kMaxBytes = uint64_t{16} << 30;  // refuse absurd shapes early

Status bad(const std::string& origin, const std::string& problem) {
  return Status::corruption(origin + ": " + problem);
}

// Header text as it may appear in a message: a file's bytes can be
// anything, terminal escapes included.
std::string printable(std::string_view text) {
  constexpr size_t kMaxShown = 200;
  std::string out;
  for (char c : text.substr(0, kMaxShown)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (text.size() > kMaxShown) out += "...";
  return out;
}

uint32_t read_le(const uint8_t* p, int bytes) {
  uint32_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

size_t skip_spaces(std::string_view text, size_t pos) {
  while (pos < text.size() && is_space(text[pos])) ++pos;
  return pos;
}

bool is_quote(char c) { return c == '\'' || c == '"'; }

// The length of the value `match` recognises at the start of its argument; 0
// for none.
using ValueMatcher = size_t (*)(std::string_view);

size_t quoted_string(std::string_view text) {
  if (text.empty() || !is_quote(text[0])) return 0;
  const size_t close = text.find(text[0], 1);
  return close == std::string_view::npos ? 0 : close + 1;
}

size_t python_bool(std::string_view text) {
  if (text.starts_with("True")) return 4;
  if (text.starts_with("False")) return 5;
  return 0;
}

size_t parenthesised(std::string_view text) {
  if (text.empty() || text[0] != '(') return 0;
  const size_t close = text.find(')');
  return close == std::string_view::npos ? 0 : close + 1;
}

// Finds `'key': <value>` in the header dictionary and returns the value text.
// A plain scan: std::regex recursed once per character and overflowed the
// stack on a header of some ten thousand bytes.
bool dict_value(std::string_view header, std::string_view key, ValueMatcher match, std::string& value) {
  for (size_t at = header.find(key); at != std::string_view::npos; at = header.find(key, at + 1)) {
    const size_t after_key = at + key.size();
    if (at == 0 || after_key >= header.size() || !is_quote(header[at - 1]) || !is_quote(header[after_key])) {
      continue;
    }
    const size_t colon = skip_spaces(header, after_key + 1);
    if (colon >= header.size() || header[colon] != ':') continue;
    const std::string_view rest = header.substr(skip_spaces(header, colon + 1));
    if (const size_t length = match(rest); length > 0) {
      value = std::string(rest.substr(0, length));
      return true;
    }
  }
  return false;
}

Result<DType> parse_descr(const std::string& descr, const std::string& origin) {
  if (descr == "<f4" || descr == "|f4") return DType::kFloat32;
  if (descr == "<f8" || descr == "|f8") return DType::kFloat64;
  return Status::invalid_argument(origin + ": unsupported dtype '" + printable(descr) +
                                  "' (expected little-endian float32 '<f4' or float64 '<f8')");
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A Python tuple of non-negative integers, as numpy writes it: "()", "(3,)",
// "(3, 4)" (and "(3)"). Anything else, "(-5, 10)" or "(2.5,)", is refused,
// as numpy refuses it.
Result<std::vector<int64_t>> parse_shape(std::string_view tuple, const std::string& origin) {
  auto refuse = [&] { return bad(origin, "shape " + printable(tuple) + " is not a tuple of non-negative integers"); };
  const std::string_view inside = tuple.substr(1, tuple.size() - 2);  // the matcher kept the parentheses
  std::vector<int64_t> shape;
  for (size_t pos = skip_spaces(inside, 0); pos < inside.size();) {
    size_t end = pos;
    while (end < inside.size() && is_digit(inside[end])) ++end;
    if (end == pos) return refuse();
    const std::string digits(inside.substr(pos, end - pos));
    if (digits.size() > 15) return bad(origin, "dimension " + digits + " is too large");
    shape.push_back(std::stoll(digits));
    pos = skip_spaces(inside, end);
    if (pos == inside.size()) break;
    if (inside[pos] != ',') return refuse();
    pos = skip_spaces(inside, pos + 1);
  }
  return shape;
}

Result<uint64_t> checked_bytes(const std::vector<int64_t>& shape, DType dtype,
                               const std::string& origin) {
  uint64_t count = 1;
  for (int64_t dim : shape) {
    if (dim != 0 && count > kMaxBytes / static_cast<uint64_t>(dim)) {
      return Status::resource_exhausted(origin + ": the shape is too large");
    }
    count *= static_cast<uint64_t>(dim);
  }
  if (count > kMaxBytes / dtype_size(dtype)) {
    return Status::resource_exhausted(origin + ": the shape is too large");
  }
  return count * dtype_size(dtype);
}

// Python tuple syntax: "(3, 4)", "(3,)", "()".
std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) out += ",";
  return out + ")";
}

}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t dim : shape) n *= dim;
  return n;
}

Result<NpyArray> parse_npy(std::span<const uint8_t> bytes, const std::string& origin) {
  if (bytes.size() < kMagicSize + 4 || std::memcmp(bytes.data(), kMagic, kMagicSize) != 0) {
    return bad(origin, "not a .npy file (bad magic)");
  }
  const uint8_t major = bytes[6];
  if (major < 1 || major > 3) {
    return bad(origin, "unsupported .npy format version " + std::to_string(major));
  }
  const int length_bytes = major == 1 ? 2 : 4;
  const size_t prefix = kMagicSize + 2 + static_cast<size_t>(length_bytes);
  if (bytes.size() < prefix) return bad(origin, "truncated header");
  const size_t header_size = read_le(bytes.data() + 8, length_bytes);
  if (bytes.size() < prefix + header_size) return bad(origin, "truncated header");
  const std::string header(reinterpret_cast<const char*>(bytes.data() + prefix), header_size);

  std::string descr, fortran, tuple;
  if (!dict_value(header, "descr", quoted_string, descr) ||
      !dict_value(header, "fortran_order", python_bool, fortran) ||
      !dict_value(header, "shape", parenthesised, tuple)) {
    return bad(origin, "malformed header dictionary: " + printable(header));
  }
  if (fortran == "True") {
    return Status::invalid_argument(origin + ": Fortran-order arrays are not supported "
                                             "(save with numpy.ascontiguousarray)");
  }
  NpyArray array;
  COHORT_ASSIGN_OR_RETURN(array.dtype, parse_descr(descr.substr(1, descr.size() - 2), origin));
  COHORT_ASSIGN_OR_RETURN(array.shape, parse_shape(tuple, origin));
  COHORT_ASSIGN_OR_RETURN(uint64_t data_bytes, checked_bytes(array.shape, array.dtype, origin));
  const size_t available = bytes.size() - prefix - header_size;
  if (available < data_bytes) {
    return bad(origin, "truncated data: expected " + std::to_string(data_bytes) + " bytes, got " +
                           std::to_string(available));
  }
  if (available > data_bytes) {
    return bad(origin, std::to_string(available - data_bytes) + " trailing bytes after the data");
  }
  const uint8_t* data = bytes.data() + prefix + header_size;
  array.data.assign(data, data + data_bytes);
  return array;
}

Result<NpyArray> read_npy(const std::filesystem::path& path) {
  // The largest array parse_npy accepts, with room for its header.
  constexpr uint64_t kMaxFileBytes = kMaxBytes + (uint64_t{1} << 20);
  COHORT_ASSIGN_OR_RETURN(const std::string bytes, read_regular_file(path, kMaxFileBytes, "a .npy file"));
  return parse_npy({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, path.string());
}

std::vector<uint8_t> serialize_npy(const NpyArray& array) {
  std::string header = std::string("{'descr': '") +
                       (array.dtype == DType::kFloat64 ? "<f8" : "<f4") +
                       "', 'fortran_order': False, 'shape': " + shape_text(array.shape) + ", }";
  // Pad with spaces so that the data starts on a 64-byte boundary.
  const size_t unpadded = kMagicSize + 4 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::vector<uint8_t> out(kMagic, kMagic + kMagicSize);
  out.push_back(1);
  out.push_back(0);
  out.push_back(static_cast<uint8_t>(header.size() & 0xff));
  out.push_back(static_cast<uint8_t>(header.size() >> 8));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), array.data.begin(), array.data.end());
  return out;
}

Status write_npy(const std::filesystem::path& path, const NpyArray& array) {
  const std::vector<uint8_t> bytes = serialize_npy(array);
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::io_error(tmp.string() + ": cannot create");
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) return Status::io_error(tmp.string() + ": write failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::io_error(path.string() + ": " + ec.message());
  return Status();
}

}  // namespace cohort
