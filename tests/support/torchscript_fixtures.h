// The TorchScript archives tests/support/make_torchscript_fixtures.py writes
// at build time (COHORT_TORCHSCRIPT_DIR): small.pt (conv, BatchNorm,
// dropout; [B,1,28,28] -> [B,10]) and the ones the coordinator refuses.
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "cohort/models.h"

namespace cohort::testing {

inline std::filesystem::path torchscript_fixture(std::string_view name) {
  return std::filesystem::path(COHORT_TORCHSCRIPT_DIR) / name;
}

// The fixture's source; aborts the test binary when it is missing (a build
// without the fixtures target).
inline ModelSource torchscript_source(std::string_view name = "small.pt") {
  return std::move(read_model_archive(torchscript_fixture(name))).value();
}

inline std::unique_ptr<Model> torchscript_model(std::string_view name = "small.pt") {
  return std::move(make_model(torchscript_source(name), 0)).value();
}

}  // namespace cohort::testing
