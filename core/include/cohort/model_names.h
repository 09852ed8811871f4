// The built-in models' names, without LibTorch's headers, so that the job
// config (core/src/config.cpp) checks model.name against the same list that
// Model::create (cohort/models.h) builds from.
#pragma once

#include <span>
#include <string_view>

namespace cohort {

// "cnn", "mlp", "mlp-wide", in that order (docs/CONFIG.md gives their sizes);
// Model::create accepts exactly these. The span refers to static storage.
std::span<const std::string_view> model_names();

// The name a job, a task and a model carry when the model is a TorchScript
// archive ([model] path): never a built-in's name.
inline constexpr std::string_view kTorchScriptModelName = "torchscript";

}  // namespace cohort
