// The training states a worker reveals for an audit travel as one tensor
// payload: for each challenged segment, the parameters (and momentum, when
// the task uses it) before and after the segment, as flat tensors named by
// reveal_tensor_name() (protocol.h). This header packs them on the worker
// and unpacks them on the coordinator.
#pragma once

#include <vector>

#include "cohort/proof_of_learning.h"
#include "cohort/protocol.h"
#include "cohort/tensor_codec.h"

namespace cohort {

struct PackedStates {
  Layout layout;
  at::Tensor flat;  // float32, layout order
};

// Packs the states of `openings` (each with before_state/after_state set).
PackedStates pack_reveal_states(const std::vector<SegmentOpening>& openings);

// The reveal's proofs joined with the decoded states. Errors
// (InvalidArgument, naming the problem): a layout other than the one
// pack_reveal_states gives for these segments, `parameter_count` and
// `with_momentum`; segment numbers out of order or repeated.
Result<std::vector<SegmentOpening>> unpack_reveal(const Reveal& reveal, const DecodedPayload& states,
                                                  int64_t parameter_count, bool with_momentum);

}  // namespace cohort
