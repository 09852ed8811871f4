#include "cohort/reveal_payload.h"

#include <ATen/ATen.h>

namespace cohort {
namespace {

struct StatePart {
  uint32_t segment;
  bool after;
  bool momentum;
};

// In name order: "after" < "before", "momentum" < "parameters".
std::vector<StatePart> parts_of(const std::vector<uint32_t>& segments, bool with_momentum) {
  std::vector<StatePart> parts;
  for (uint32_t segment : segments) {
    for (bool after : {true, false}) {
      if (with_momentum) parts.push_back({segment, after, true});
      parts.push_back({segment, after, false});
    }
  }
  return parts;
}

Layout layout_of(const std::vector<StatePart>& parts, int64_t parameter_count) {
  Layout layout;
  for (const StatePart& part : parts) {
    layout.tensors.push_back(TensorSpec{reveal_tensor_name(part.segment, part.after, part.momentum),
                                        DType::kFloat32, {parameter_count}});
  }
  return layout;
}

// Works for const and mutable openings alike.
template <class Opening>
auto& state_part(Opening& opening, const StatePart& part) {
  auto& state = part.after ? opening.after_state : opening.before_state;
  return part.momentum ? state.momentum : state.parameters;
}

}  // namespace

PackedStates pack_reveal_states(const std::vector<SegmentOpening>& openings) {
  std::vector<uint32_t> segments;
  for (const SegmentOpening& opening : openings) segments.push_back(opening.segment);
  const bool with_momentum = !openings.empty() && openings.front().before_state.momentum.defined();
  const int64_t count = openings.empty() ? 0 : openings.front().before_state.parameters.numel();
  const Layout layout = layout_of(parts_of(segments, with_momentum), count);
  std::vector<at::Tensor> pieces;
  for (const SegmentOpening& opening : openings) {
    for (const StatePart& part : parts_of({opening.segment}, with_momentum)) {
      pieces.push_back(state_part(opening, part).reshape({-1}));
    }
  }
  return PackedStates{layout,
                      pieces.empty() ? at::empty({0}, at::kFloat) : at::cat(pieces)};
}

Result<std::vector<SegmentOpening>> unpack_reveal(const Reveal& reveal, const DecodedPayload& states,
                                                  int64_t parameter_count, bool with_momentum) {
  std::vector<uint32_t> segments;
  for (const SegmentProof& proof : reveal.segments) {
    if (!segments.empty() && proof.segment <= segments.back()) {
      return Status::invalid_argument("revealed segments must be ascending and distinct");
    }
    segments.push_back(proof.segment);
  }
  if (states.layout != layout_of(parts_of(segments, with_momentum), parameter_count)) {
    return Status::invalid_argument("the revealed states do not have the layout of " +
                                    std::to_string(segments.size()) + " segment(s) of " +
                                    std::to_string(parameter_count) + " parameters" +
                                    (with_momentum ? " with momentum" : ""));
  }
  std::vector<SegmentOpening> openings;
  for (const SegmentProof& proof : reveal.segments) {
    SegmentOpening opening;
    opening.segment = proof.segment;
    opening.before = proof.before.leaf;
    opening.after = proof.after.leaf;
    opening.before_proof = proof.before.proof;
    opening.after_proof = proof.after.proof;
    opening.before_state.step = proof.before.leaf.step;
    opening.after_state.step = proof.after.leaf.step;
    openings.push_back(std::move(opening));
  }
  int64_t offset = 0;
  for (SegmentOpening& opening : openings) {
    for (const StatePart& part : parts_of({opening.segment}, with_momentum)) {
      state_part(opening, part) = states.flat.narrow(0, offset, parameter_count);
      offset += parameter_count;
    }
  }
  return openings;
}

}  // namespace cohort
