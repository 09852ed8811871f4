// The canonical flat form of a model's parameters, and its transfer as raw
// payload frames (frame.h).
//
// Canonical form: the parameters sorted by name, each flattened row-major and
// concatenated into one contiguous 1-D float32 tensor, with a layout (name,
// dtype, shape per tensor) that says how to cut it back. Every model,
// update and aggregate in Cohort is a flat tensor plus a layout.
//
// On the wire the flat tensor may be cast to a smaller dtype (float16,
// bfloat16) or kept as float32/float64; it is split into chunks of at most
// `chunk_bytes`, each one frame. Sending does not copy the tensor's bytes
// (the frames share its storage, keeping it alive); receiving copies only
// when the data arrived in several chunks, in another dtype, or in a frame
// that is not exclusive (Frame::is_exclusive: someone else may read it).
//
// Functions are thread-safe; tensors passed in are not modified.
#pragma once

#include <ATen/core/Tensor.h>

#include <span>
#include <vector>

#include "cohort/crypto.h"
#include "cohort/finite.h"  // all_finite, for the checks on decoded payloads
#include "cohort/frame.h"
#include "cohort/protocol.h"
#include "cohort/status.h"

namespace cohort {

struct Layout {
  std::vector<TensorSpec> tensors;  // sorted by name; dtype is the storage dtype

  int64_t numel() const;
  bool operator==(const Layout&) const = default;
};

// Checks that names are unique and sorted, shapes are non-negative and the
// element count fits in int64.
Status validate_layout(const Layout& layout);

// BLAKE2b-256 over the layout (names, shapes) and the flat tensor's bytes as
// float32. The same model always has the same digest; it names a model in
// tasks, updates and checkpoints.
Digest digest_of(const Layout& layout, const at::Tensor& flat);

// A tensor ready to send: its header, and the bytes in the wire dtype.
// chunks() may be called once per recipient: every call returns fresh
// frames that borrow the same bytes (no copy, no re-hashing).
class EncodedPayload {
 public:
  EncodedPayload(PayloadHeader header, at::Tensor wire, size_t chunk_bytes);

  const PayloadHeader& header() const { return header_; }
  Frames chunks() const;

 private:
  PayloadHeader header_;
  at::Tensor wire_;     // 1-D contiguous CPU tensor in the wire dtype
  size_t chunk_bytes_;  // a multiple of the element size
};

// Encodes a flat float32 tensor for sending. `wire_dtype` is the dtype of the
// bytes on the wire. The header's digest covers the layout and the bytes as
// sent, so for a float32 wire it equals digest_of(layout, flat).
// Errors: a layout validate_layout rejects; flat is not 1-D float32 of
// layout.numel() elements; chunk_bytes 0.
Result<EncodedPayload> encode_payload(const Layout& layout, const at::Tensor& flat,
                                      size_t chunk_bytes, DType wire_dtype = DType::kFloat32);

struct PayloadLimits {
  uint64_t max_bytes = uint64_t{2} << 30;
  uint32_t max_chunks = 65536;
  bool verify_digest = true;
};

struct DecodedPayload {
  Layout layout;       // with dtype float32 (the in-memory dtype)
  at::Tensor flat;     // 1-D float32, contiguous
};

// Rebuilds the flat tensor from received chunks. `chunks` is consumed.
// Errors: sizes that do not add up, more bytes or chunks than allowed, a
// layout that is not canonical, a digest mismatch (Corruption), or a layout
// different from `expected` when one is given (InvalidArgument).
Result<DecodedPayload> decode_payload(const PayloadHeader& header,
                                      Frames chunks,
                                      const PayloadLimits& limits,
                                      const Layout* expected = nullptr);

}  // namespace cohort
