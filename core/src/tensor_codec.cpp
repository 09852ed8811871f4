#include "cohort/tensor_codec.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>

namespace cohort {
namespace {

at::ScalarType scalar_type_of(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return at::kFloat;
    case DType::kFloat64: return at::kDouble;
    case DType::kFloat16: return at::kHalf;
    case DType::kBFloat16: return at::kBFloat16;
  }
  return at::kFloat;
}

std::span<const uint8_t> bytes_of(const at::Tensor& contiguous) {
  return {static_cast<const uint8_t*>(contiguous.data_ptr()),
          static_cast<size_t>(contiguous.nbytes())};
}

void hash_layout(Hasher& hasher, const Layout& layout) {
  hasher.update_u64(layout.tensors.size());
  for (const TensorSpec& spec : layout.tensors) {
    hasher.update(spec.name);
    hasher.update_u64(static_cast<uint64_t>(spec.dtype));
    hasher.update_u64(spec.shape.size());
    for (int64_t dim : spec.shape) hasher.update_u64(static_cast<uint64_t>(dim));
  }
}

Layout with_dtype(const std::vector<TensorSpec>& tensors, DType dtype) {
  Layout layout{tensors};
  for (TensorSpec& spec : layout.tensors) spec.dtype = dtype;
  return layout;
}

// Multiplies with an overflow check; false on overflow.
bool checked_numel(const TensorSpec& spec, uint64_t& numel) {
  numel = 1;
  for (int64_t dim : spec.shape) {
    if (dim < 0) return false;
    if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(dim)) {
      return false;
    }
    numel *= static_cast<uint64_t>(dim);
  }
  return true;
}

Status check_header(const PayloadHeader& header, const PayloadLimits& limits, size_t chunk_count,
                    DType& wire_dtype) {
  if (header.chunk_count != chunk_count) {
    return Status::corruption("payload header announces " + std::to_string(header.chunk_count) +
                              " chunks but " + std::to_string(chunk_count) + " arrived");
  }
  if (chunk_count > limits.max_chunks) {
    return Status::resource_exhausted("payload has " + std::to_string(chunk_count) +
                                      " chunks, limit " + std::to_string(limits.max_chunks));
  }
  if (header.total_bytes > limits.max_bytes) {
    return Status::resource_exhausted("payload of " + std::to_string(header.total_bytes) +
                                      " bytes exceeds the limit of " +
                                      std::to_string(limits.max_bytes));
  }
  wire_dtype = header.tensors.empty() ? DType::kFloat32 : header.tensors.front().dtype;
  uint64_t expected_bytes = 0;
  for (const TensorSpec& spec : header.tensors) {
    if (spec.dtype != wire_dtype) {
      return Status::corruption("payload mixes dtypes (" + std::string(dtype_name(wire_dtype)) +
                                " and " + std::string(dtype_name(spec.dtype)) + ")");
    }
    uint64_t numel = 0;
    if (!checked_numel(spec, numel) || numel > limits.max_bytes) {
      return Status::resource_exhausted("tensor '" + spec.name + "' is too large");
    }
    expected_bytes += numel * dtype_size(wire_dtype);
    if (expected_bytes > limits.max_bytes) {
      return Status::resource_exhausted("payload tensors exceed the limit of " +
                                        std::to_string(limits.max_bytes) + " bytes");
    }
  }
  if (expected_bytes != header.total_bytes) {
    return Status::corruption("payload header says " + std::to_string(header.total_bytes) +
                              " bytes but its tensors need " + std::to_string(expected_bytes));
  }
  return Status();
}

// Joins the chunks into one tensor of the wire dtype. A single suitably
// aligned exclusive chunk is adopted without copying (the tensor may then be
// written in place, so a shared chunk is copied).
Result<at::Tensor> join_chunks(Frames chunks, uint64_t total_bytes,
                               DType wire_dtype) {
  uint64_t received = 0;
  for (const auto& chunk : chunks) received += chunk.size();
  if (received != total_bytes) {
    return Status::corruption("payload chunks hold " + std::to_string(received) +
                              " bytes, header says " + std::to_string(total_bytes));
  }
  const size_t elem = dtype_size(wire_dtype);
  const int64_t numel = static_cast<int64_t>(total_bytes / elem);
  const auto options = at::TensorOptions().dtype(scalar_type_of(wire_dtype));
  if (chunks.size() == 1 && chunks[0].is_exclusive() &&
      reinterpret_cast<uintptr_t>(chunks[0].data()) % elem == 0) {
    std::shared_ptr<const void> owner = chunks[0].owner();
    return at::from_blob(chunks[0].exclusive_data(), {numel}, [owner](void*) mutable { owner.reset(); }, options);
  }
  at::Tensor joined = at::empty({numel}, options);
  auto* out = static_cast<uint8_t*>(joined.data_ptr());
  for (const auto& chunk : chunks) {
    if (chunk.size() == 0) continue;  // an empty frame may have no bytes at all (data() null)
    std::memcpy(out, chunk.data(), chunk.size());
    out += chunk.size();
  }
  return joined;
}

}  // namespace

int64_t Layout::numel() const {
  int64_t n = 0;
  for (const TensorSpec& spec : tensors) n += spec.numel();
  return n;
}

Status validate_layout(const Layout& layout) {
  uint64_t total = 0;
  for (size_t i = 0; i < layout.tensors.size(); ++i) {
    const TensorSpec& spec = layout.tensors[i];
    if (spec.name.empty()) return Status::invalid_argument("tensor " + std::to_string(i) + " has no name");
    if (i > 0 && !(layout.tensors[i - 1].name < spec.name)) {
      return Status::invalid_argument("layout is not sorted by unique name at '" + spec.name + "'");
    }
    for (int64_t dim : spec.shape) {
      if (dim < 0) return Status::invalid_argument("tensor '" + spec.name + "' has a negative dimension");
    }
    // numel() multiplies in int64: reject what would overflow it.
    uint64_t numel = 0;
    constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (!checked_numel(spec, numel) || numel > kMax - total) {
      return Status::invalid_argument("layout has too many elements at '" + spec.name + "'");
    }
    total += numel;
  }
  return Status();
}

// `layout` carries the dtype of `values`, which is 1-D and contiguous.
static Digest digest_of_typed(const Layout& layout, const at::Tensor& values) {
  Hasher hasher;
  hash_layout(hasher, layout);
  hasher.update(bytes_of(values));
  return hasher.finish();
}

Digest digest_of(const Layout& layout, const at::Tensor& flat) {
  return digest_of_typed(with_dtype(layout.tensors, DType::kFloat32),
                         flat.to(at::kCPU, at::kFloat).contiguous());
}

EncodedPayload::EncodedPayload(PayloadHeader header, at::Tensor wire, size_t chunk_bytes)
    : header_(std::move(header)), wire_(std::move(wire)), chunk_bytes_(chunk_bytes) {}

Frames EncodedPayload::chunks() const {
  Frames out;
  out.reserve(header_.chunk_count);
  const size_t total = static_cast<size_t>(wire_.nbytes());
  const auto* base = static_cast<const uint8_t*>(wire_.const_data_ptr());
  // Every chunk keeps the tensor alive (the ZeroMQ I/O thread may send after
  // the caller dropped the payload).
  auto owner = std::make_shared<const at::Tensor>(wire_);
  for (size_t offset = 0; offset < total; offset += chunk_bytes_) {
    size_t size = std::min(chunk_bytes_, total - offset);
    out.push_back(Frame::shared(owner, {base + offset, size}));
  }
  return out;
}

Result<EncodedPayload> encode_payload(const Layout& layout, const at::Tensor& flat,
                                      size_t chunk_bytes, DType wire_dtype) {
  if (chunk_bytes == 0) return Status::invalid_argument("chunk_bytes must be > 0");
  COHORT_RETURN_IF_ERROR(validate_layout(layout));
  if (flat.dim() != 1 || flat.scalar_type() != at::kFloat || flat.numel() != layout.numel()) {
    return Status::invalid_argument("flat tensor must be 1-D float32 with " +
                                    std::to_string(layout.numel()) + " elements");
  }
  Layout wire_layout = with_dtype(layout.tensors, wire_dtype);
  at::Tensor wire = flat.to(at::kCPU, scalar_type_of(wire_dtype)).contiguous();
  const size_t elem = dtype_size(wire_dtype);
  chunk_bytes = std::max(elem, chunk_bytes / elem * elem);  // never split an element
  const size_t total = static_cast<size_t>(wire.nbytes());

  PayloadHeader header;
  header.digest = digest_of_typed(wire_layout, wire);
  header.tensors = std::move(wire_layout.tensors);
  header.total_bytes = total;
  header.chunk_count = static_cast<uint32_t>((total + chunk_bytes - 1) / chunk_bytes);
  return EncodedPayload(std::move(header), std::move(wire), chunk_bytes);
}

Result<DecodedPayload> decode_payload(const PayloadHeader& header,
                                      Frames chunks,
                                      const PayloadLimits& limits, const Layout* expected) {
  DType wire_dtype = DType::kFloat32;
  COHORT_RETURN_IF_ERROR(check_header(header, limits, chunks.size(), wire_dtype));
  DecodedPayload out;
  out.layout = with_dtype(header.tensors, DType::kFloat32);
  COHORT_RETURN_IF_ERROR(validate_layout(out.layout).with_context("payload layout"));
  if (expected != nullptr && !(out.layout == *expected)) {
    return Status::invalid_argument("payload layout does not match the model (" +
                                    std::to_string(out.layout.tensors.size()) + " tensors, " +
                                    std::to_string(out.layout.numel()) + " values; expected " +
                                    std::to_string(expected->tensors.size()) + " tensors, " +
                                    std::to_string(expected->numel()) + " values)");
  }
  COHORT_ASSIGN_OR_RETURN(at::Tensor wire,
                          join_chunks(std::move(chunks), header.total_bytes, wire_dtype));
  if (limits.verify_digest && digest_of_typed(Layout{header.tensors}, wire) != header.digest) {
    return Status::corruption("payload digest does not match its bytes");
  }
  out.flat = wire_dtype == DType::kFloat32 ? wire : wire.to(at::kFloat);
  return out;
}

}  // namespace cohort
