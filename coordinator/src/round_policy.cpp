#include "cohort/round_policy.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <span>

#include "cohort/attacks.h"
#include "cohort/random.h"
#include "cohort/training.h"

namespace cohort {
namespace {

// The job's pre-aggregators and rule, the server step, and the root update
// when the job has trusted samples.
class PipelinePolicy final : public RoundPolicy {
 public:
  PipelinePolicy(const JobConfig& job, AggregationPipeline pipeline, std::unique_ptr<ServerOptimizer> server,
                 RootSamples root, at::Tensor buffers)
      : seed_(job.job.seed),
        workers_per_round_(job.round.workers_per_round),
        min_updates_(job.round.min_updates),
        plain_server_step_(job.aggregation.server_optimizer == "sgd" && job.aggregation.server_learning_rate == 1.0),
        hyper_(hyperparameters_of(job.training)),
        pipeline_(std::move(pipeline)),
        server_(std::move(server)),
        root_(std::move(root)),
        buffers_(std::move(buffers)) {}

  std::vector<uint32_t> select(uint32_t round, std::vector<uint32_t> candidates) const override {
    const auto wanted = static_cast<size_t>(workers_per_round_);
    if (wanted > 0 && wanted < candidates.size()) {
      Rng(seed_).fork(round).shuffle(std::span<uint32_t>(candidates));
      candidates.resize(wanted);
      std::sort(candidates.begin(), candidates.end());
    }
    return candidates;
  }

  Result<RoundStep> aggregate(const RoundUpdates& updates, at::Tensor& global) override {
    if (static_cast<int>(updates.rows.size()) < min_updates_) return RoundStep{};
    AggregationContext context;
    context.previous = previous_;
    context.seed = aggregation_seed(updates.round);
    if (root_.data.size() > 0) {
      Result<at::Tensor> root = root_update(context.seed, global);
      if (!root.ok()) return root.status().with_context("the root update failed");
      context.root_update = *root;
    }
    Result<AggregationResult> result = pipeline_.run(at::stack(updates.rows), updates.weights, context);
    if (!result.ok()) return result.status().with_context("aggregation failed");
    // A new tensor, never written in place: the model's last payload
    // borrows the old one's memory (tensor_codec.h), and ZeroMQ may still be
    // sending it, or (inproc) a worker in this process may still be reading it.
    Result<at::Tensor> moved = server_->step(global, result->aggregate);
    if (!moved.ok()) return moved.status().with_context("the server step failed");
    global = buffers_.defined() ? at::where(buffers_, global + result->aggregate, *moved) : std::move(moved).value();
    previous_ = result->aggregate;
    RoundStep step;
    step.model_updated = true;
    step.row_weights = std::move(result->row_weights);
    return step;
  }

  PolicyState state() const override { return {previous_, server_->state()}; }
  Status restore(PolicyState state) override {
    COHORT_RETURN_IF_ERROR(server_->restore(std::move(state.server)));
    previous_ = std::move(state.previous_aggregate);
    return Status();
  }
  std::string description() const override {
    return pipeline_.description() + (plain_server_step_ ? "" : ", server step " + server_->description());
  }

  const AggregationPipeline& pipeline() const { return pipeline_; }
  int min_updates() const { return min_updates_; }
  uint64_t aggregation_seed(uint32_t round) const { return Rng(seed_).fork(round).next_u64(); }

 private:
  // The policy's own update on its trusted samples, from the current model
  // with the workers' hyperparameters (FLTrust's g0).
  Result<at::Tensor> root_update(uint64_t seed, const at::Tensor& global) {
    if (!root_model_) {
      COHORT_ASSIGN_OR_RETURN(root_model_, make_model(root_.model, seed_));
    }
    COHORT_RETURN_IF_ERROR(root_model_->set_flat_parameters(global));
    MomentumBuffers* momentum = hyper_.keep_momentum ? &root_momentum_ : nullptr;
    COHORT_ASSIGN_OR_RETURN(LocalTraining trained, train_locally(*root_model_, root_.data, hyper_, seed, momentum));
    return trained.delta;
  }

  uint64_t seed_;
  int workers_per_round_;
  int min_updates_;
  bool plain_server_step_;  // sgd at rate 1: global += aggregate
  Hyperparameters hyper_;
  AggregationPipeline pipeline_;
  std::unique_ptr<ServerOptimizer> server_;
  RootSamples root_;
  at::Tensor buffers_;  // coordinates the server step leaves to the aggregate; undefined: none
  std::unique_ptr<Model> root_model_;  // made on the first root update
  MomentumBuffers root_momentum_;
  at::Tensor previous_;  // last round's aggregate (centered clipping starts there)
};

// Simulated Byzantine workers around a policy: each round's rows gain
// `count` rows the attack computes from the honest ones (an omniscient
// adversary), weighted like an average honest row.
class AttackedPolicy final : public RoundPolicy {
 public:
  AttackedPolicy(std::unique_ptr<PipelinePolicy> inner, std::unique_ptr<Attack> attack, int count, std::string name)
      : inner_(std::move(inner)), attack_(std::move(attack)), count_(count), name_(std::move(name)) {}

  std::vector<uint32_t> select(uint32_t round, std::vector<uint32_t> candidates) const override {
    return inner_->select(round, std::move(candidates));
  }

  Result<RoundStep> aggregate(const RoundUpdates& honest, at::Tensor& global) override {
    if (static_cast<int>(honest.rows.size()) < inner_->min_updates()) return RoundStep{};
    const at::Tensor stacked = at::stack(honest.rows);
    Result<at::Tensor> byzantine = attack_->byzantine_rows(stacked, count_, inner_->aggregation_seed(honest.round));
    if (!byzantine.ok()) return byzantine.status().with_context("the simulated attack failed");
    RoundUpdates all = honest;
    for (const at::Tensor& row : byzantine->to(stacked.scalar_type()).unbind(0)) all.rows.push_back(row);
    const double mean_weight =
        std::accumulate(honest.weights.begin(), honest.weights.end(), 0.0) / static_cast<double>(honest.weights.size());
    all.weights.insert(all.weights.end(), static_cast<size_t>(count_), mean_weight);
    COHORT_ASSIGN_OR_RETURN(RoundStep step, inner_->aggregate(all, global));
    // Honest rows come first; the rest are the simulated ones.
    step.byzantine = count_;
    for (size_t i = honest.rows.size(); i < step.row_weights.size(); ++i) step.byzantine_weight += step.row_weights[i];
    step.row_weights.resize(std::min(step.row_weights.size(), honest.rows.size()));
    return step;
  }

  PolicyState state() const override { return inner_->state(); }
  Status restore(PolicyState state) override { return inner_->restore(std::move(state)); }
  std::string description() const override {
    return inner_->description() + ", with " + std::to_string(count_) + " simulated " + name_ + " update(s)";
  }

 private:
  std::unique_ptr<PipelinePolicy> inner_;  // declared before the attack tuned against its pipeline
  std::unique_ptr<Attack> attack_;
  int count_;
  std::string name_;
};

}  // namespace

Result<std::unique_ptr<RoundPolicy>> make_round_policy(const JobConfig& job, const RuleRegistry& rules,
                                                       RootSamples root, at::Tensor buffers) {
  const AggregationSection& a = job.aggregation;
  COHORT_ASSIGN_OR_RETURN(AggregationPipeline pipeline, rules.create_pipeline(a.pre, a.rule, RuleParams(a.f, a.params)));
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<ServerOptimizer> server,
                          make_server_optimizer(a.server_optimizer, a.server_learning_rate, a.server_params));
  auto policy =
      std::make_unique<PipelinePolicy>(job, std::move(pipeline), std::move(server), std::move(root), std::move(buffers));
  if (job.attack.byzantine == 0) return std::unique_ptr<RoundPolicy>(std::move(policy));
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Attack> attack,
                          make_attack(job.attack.name, RuleParams(job.attack.byzantine, job.attack.params),
                                      &policy->pipeline()));
  return std::unique_ptr<RoundPolicy>(
      std::make_unique<AttackedPolicy>(std::move(policy), std::move(attack), job.attack.byzantine, job.attack.name));
}

}  // namespace cohort
