// `cohort aggregate`: run pre-aggregators and a rule on saved updates
// (.npy [n, d]) and write the [d] aggregate. Any bad input is one line on
// stderr and exit code 2.
#include <ATen/ATen.h>

#include <charconv>
#include <chrono>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cohort/aggregation.h"
#include "cohort/npy.h"
#include "commands.h"
#include "options.h"

namespace cohort::cli {
namespace {

at::ScalarType scalar_type_of(const NpyArray& array) {
  return array.dtype == DType::kFloat64 ? at::kDouble : at::kFloat;
}

at::Tensor to_tensor(NpyArray& array) {
  return at::from_blob(array.data.data(), array.shape, at::TensorOptions().dtype(scalar_type_of(array)))
      .clone();
}

NpyArray to_npy(const at::Tensor& tensor) {
  at::Tensor contiguous = tensor.contiguous().cpu();
  NpyArray array;
  array.dtype = contiguous.scalar_type() == at::kDouble ? DType::kFloat64 : DType::kFloat32;
  array.shape = contiguous.sizes().vec();
  const auto* bytes = static_cast<const uint8_t*>(contiguous.data_ptr());
  array.data.assign(bytes, bytes + contiguous.nbytes());
  return array;
}

// Reads a .npy of the given rank; `what` names the option in errors.
Result<at::Tensor> load_array(const std::string& path, int64_t rank, const std::string& what) {
  COHORT_ASSIGN_OR_RETURN(NpyArray array, read_npy(path));
  if (static_cast<int64_t>(array.shape.size()) != rank) {
    return Status::invalid_argument(what + " " + path + ": expected a " + std::to_string(rank) +
                                    "-D array, got " + std::to_string(array.shape.size()) + "-D");
  }
  return to_tensor(array);
}

Result<std::map<std::string, std::string>> parse_params(const std::vector<std::string>& items) {
  std::map<std::string, std::string> params;
  for (const std::string& item : items) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::invalid_argument("--param '" + item + "': expected key=value");
    }
    params[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return params;
}

struct AggregateJob {
  std::vector<std::string> pre;
  std::string rule;
  int f = 0;
  std::map<std::string, std::string> params;
  at::Tensor rows;
  std::vector<double> weights;
  AggregationContext context;
};

// A `start` or `root` parameter naming a .npy file becomes a context vector
// of d elements (centered clipping's start, FLTrust's root update).
Status load_context_vectors(AggregateJob& job) {
  const int64_t d = job.rows.size(1);
  auto load_vector = [&](const std::string& key, at::Tensor& slot) -> Status {
    auto it = job.params.find(key);
    if (it == job.params.end() || !it->second.ends_with(".npy")) return Status();
    COHORT_ASSIGN_OR_RETURN(at::Tensor vector, load_array(it->second, 1, "--param " + key));
    if (vector.size(0) != d) {
      return Status::invalid_argument("--param " + key + "=" + it->second + ": expected " +
                                      std::to_string(d) + " values, got " +
                                      std::to_string(vector.size(0)));
    }
    slot = vector.to(job.rows.scalar_type());
    if (key == "start") it->second = "previous";
    else job.params.erase(it);
    return Status();
  };
  COHORT_RETURN_IF_ERROR(load_vector("start", job.context.previous));
  return load_vector("root", job.context.root_update);
}

// Program_options would read "-1" as 2^64 - 1: the seed is parsed here.
Result<uint64_t> parse_seed(const std::string& text) {
  uint64_t seed = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seed);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return Status::invalid_argument("--seed: expected an integer in [0, 2^64), got '" + text + "'");
  }
  return seed;
}

Result<AggregateJob> load_job(const po::variables_map& vm) {
  AggregateJob job;
  job.rule = vm["rule"].as<std::string>();
  job.f = vm["f"].as<int>();
  COHORT_ASSIGN_OR_RETURN(job.context.seed, parse_seed(vm["seed"].as<std::string>()));
  if (vm.count("pre")) job.pre = vm["pre"].as<std::vector<std::string>>();
  COHORT_ASSIGN_OR_RETURN(job.params, parse_params(vm.count("param") ? vm["param"].as<std::vector<std::string>>()
                                                                     : std::vector<std::string>{}));
  COHORT_ASSIGN_OR_RETURN(job.rows, load_array(vm["input"].as<std::string>(), 2, "--input"));
  if (vm.count("weights")) {
    COHORT_ASSIGN_OR_RETURN(at::Tensor w, load_array(vm["weights"].as<std::string>(), 1, "--weights"));
    w = w.to(at::kDouble).contiguous();
    job.weights.assign(w.data_ptr<double>(), w.data_ptr<double>() + w.numel());
  }
  COHORT_RETURN_IF_ERROR(load_context_vectors(job));
  return job;
}

std::string diagnostics_json(const AggregateJob& job, const AggregationPipeline& pipeline,
                             const AggregationResult& result, double seconds) {
  nlohmann::ordered_json json = {
      {"pipeline", pipeline.description()},
      {"n", job.rows.size(0)},
      {"d", job.rows.size(1)},
      {"f", job.f},
      {"dtype", job.rows.scalar_type() == at::kDouble ? "float64" : "float32"},
      {"row_weights", result.row_weights},
      {"scores", result.scores},
      {"selected", result.selected},
      {"seconds", seconds},
  };
  return json.dump();
}

int fail(const Status& status) {
  std::cerr << "cohort aggregate: " << status.message() << "\n";
  return kExitUsage;
}

}  // namespace

int aggregate_command(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()
      ("help,h", "show this help")
      ("rule", po::value<std::string>()->required(), "aggregation rule (see docs/AGGREGATION.md)")
      ("pre", po::value<std::vector<std::string>>(), "pre-aggregator, repeatable, applied in order")
      ("f", po::value<int>()->default_value(0), "assumed number of Byzantine rows")
      ("param", po::value<std::vector<std::string>>(), "key=value rule parameter, repeatable")
      ("input", po::value<std::string>()->required(), "updates: float32/float64 C-order .npy [n, d]")
      ("weights", po::value<std::string>(), "per-row weights: .npy [n]")
      ("output", po::value<std::string>()->required(), "where to write the [d] aggregate (.npy)")
      ("seed", po::value<std::string>()->default_value("0"), "seed for randomised steps, in [0, 2^64)")
      ("json", "print diagnostics (row weights, scores, selection) as JSON");
  int exit_code = kExitOk;
  auto vm = parse_args("aggregate",
                       "Aggregates saved updates with a robust rule. A parameter start=V.npy or "
                       "root=V.npy supplies\ncentered clipping's start vector or FLTrust's root "
                       "update.",
                       options, args, exit_code);
  if (!vm) return exit_code;

  Result<AggregateJob> job = load_job(*vm);
  if (!job.ok()) return fail(job.status());
  RuleRegistry registry;
  register_builtin_rules(registry);
  Result<AggregationPipeline> pipeline =
      registry.create_pipeline(job->pre, job->rule, RuleParams(job->f, job->params));
  if (!pipeline.ok()) return fail(pipeline.status());

  const auto start = std::chrono::steady_clock::now();
  Result<AggregationResult> result = catching_exceptions(
      "aggregating", [&] { return pipeline->run(job->rows, job->weights, job->context); });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!result.ok()) return fail(result.status());
  if (Status s = write_npy((*vm)["output"].as<std::string>(), to_npy(result->aggregate)); !s.ok()) {
    std::cerr << "cohort aggregate: " << s.message() << "\n";
    return kExitFailure;
  }
  if (vm->count("json")) std::cout << diagnostics_json(*job, *pipeline, *result, seconds) << "\n";
  return kExitOk;
}

}  // namespace cohort::cli
