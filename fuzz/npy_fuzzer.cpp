// Fuzzes parse_npy, the reader of the .npy files `cohort aggregate` takes
// from researchers' tools.
//
// Invariants: every dimension of a parsed array is >= 0 (numpy refuses
// "(-5, 10)"; this reader once took it as 5 rows); it holds numel *
// element-size bytes; serialising it and parsing that gives the same dtype,
// shape and bytes.
#include <cstddef>
#include <cstdint>

#include "cohort/npy.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cohort;
  Result<NpyArray> array = parse_npy({data, size}, "<fuzz>");
  if (!array.ok()) return 0;
  for (int64_t dim : array->shape) fuzz::check(dim >= 0, "every dimension is >= 0");
  fuzz::check(array->data.size() == static_cast<uint64_t>(array->numel()) * dtype_size(array->dtype),
              "the data holds numel * element-size bytes");
  Result<NpyArray> again = parse_npy(serialize_npy(*array), "<reserialized>");
  fuzz::check(again.ok(), "a parsed array serialises to a file that parses");
  fuzz::check(again->dtype == array->dtype && again->shape == array->shape && again->data == array->data,
              "serialising keeps dtype, shape and data");
  return 0;
}
