#include "cohort/reveal_payload.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

namespace cohort {
namespace {

SegmentOpening opening_of(uint32_t segment, int64_t count, bool with_momentum) {
  SegmentOpening opening;
  opening.segment = segment;
  const float base = static_cast<float>(segment) * 10.0f;
  opening.before_state.parameters = at::full({count}, base + 1);
  opening.after_state.parameters = at::full({count}, base + 2);
  if (with_momentum) {
    opening.before_state.momentum = at::full({count}, base + 3);
    opening.after_state.momentum = at::full({count}, base + 4);
  }
  opening.before.index = segment - 1;
  opening.after.index = segment;
  return opening;
}

Reveal reveal_of(const std::vector<SegmentOpening>& openings) {
  Reveal reveal;
  for (const SegmentOpening& o : openings) {
    reveal.segments.push_back(SegmentProof{o.segment, LeafOpening{o.before, {}}, LeafOpening{o.after, {}}});
  }
  return reveal;
}

TEST(RevealPayloadTest, PackThenUnpackGivesEveryStateBack) {
  for (bool with_momentum : {false, true}) {
    const std::vector<SegmentOpening> openings = {opening_of(2, 5, with_momentum), opening_of(11, 5, with_momentum)};
    PackedStates packed = pack_reveal_states(openings);
    EXPECT_TRUE(validate_layout(packed.layout).ok());  // names sort in segment order
    EXPECT_EQ(packed.flat.numel(), (with_momentum ? 8 : 4) * 5);
    Result<std::vector<SegmentOpening>> unpacked =
        unpack_reveal(reveal_of(openings), DecodedPayload{packed.layout, packed.flat}, 5, with_momentum);
    ASSERT_TRUE(unpacked.ok()) << unpacked.status().to_string();
    ASSERT_EQ(unpacked->size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      const SegmentOpening& got = (*unpacked)[i];
      EXPECT_EQ(got.segment, openings[i].segment);
      EXPECT_TRUE(at::equal(got.before_state.parameters, openings[i].before_state.parameters));
      EXPECT_TRUE(at::equal(got.after_state.parameters, openings[i].after_state.parameters));
      EXPECT_EQ(got.before_state.momentum.defined(), with_momentum);
      if (with_momentum) {
        EXPECT_TRUE(at::equal(got.before_state.momentum, openings[i].before_state.momentum));
        EXPECT_TRUE(at::equal(got.after_state.momentum, openings[i].after_state.momentum));
      }
    }
  }
}

TEST(RevealPayloadTest, ALayoutOtherThanTheSegmentsNeedIsRefused) {
  const std::vector<SegmentOpening> openings = {opening_of(3, 4, true)};
  PackedStates packed = pack_reveal_states(openings);
  const DecodedPayload payload{packed.layout, packed.flat};
  EXPECT_EQ(unpack_reveal(reveal_of(openings), payload, 5, true).status().code(),
            Status::Code::kInvalidArgument);  // wrong parameter count
  EXPECT_FALSE(unpack_reveal(reveal_of(openings), payload, 4, false).ok());  // momentum missing
  EXPECT_FALSE(unpack_reveal(reveal_of({opening_of(4, 4, true)}), payload, 4, true).ok());  // other segment
  Reveal repeated = reveal_of({opening_of(3, 4, true), opening_of(3, 4, true)});
  EXPECT_NE(unpack_reveal(repeated, payload, 4, true).status().message().find("ascending"), std::string::npos);
}

}  // namespace
}  // namespace cohort
