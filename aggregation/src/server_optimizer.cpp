// The server optimizers of cohort/server_optimizer.h: plain and momentum
// steps, and the three adaptive ones of Reddi et al., which differ only in
// how they update v.
#include "cohort/server_optimizer.h"

#include <ATen/ATen.h>

#include <functional>
#include <span>

#include "cohort/aggregation.h"
#include "cohort/number_text.h"

namespace cohort {
namespace {

// The names make_server_optimizer knows, for its error message.
constexpr std::string_view kNames[] = {"sgd", "momentum", "adagrad", "adam", "yogi"};

Status check_same_shape(const at::Tensor& global, const at::Tensor& aggregate) {
  if (global.dim() != 1 || !global.sizes().equals(aggregate.sizes())) {
    return Status::invalid_argument("the server step needs a 1-D aggregate shaped like the model: got [" +
                                    std::to_string(aggregate.numel()) + "] for [" + std::to_string(global.numel()) +
                                    "]");
  }
  return Status();
}

// A beta in [0, 1) or tau > 0 from the parameters.
Result<double> read_parameter(RuleParams& params, const std::string& key, double fallback, bool is_beta) {
  COHORT_ASSIGN_OR_RETURN(double value, params.get_double(key, fallback));
  const bool ok = is_beta ? value >= 0.0 && value < 1.0 : value > 0.0;
  if (!ok) {
    return Status::invalid_argument("server optimizer parameter '" + key + "' must be " +
                                    (is_beta ? "in [0, 1)" : "> 0") + ", got " + number_text(value));
  }
  return value;
}

// Checks that `state` holds exactly the named 1-D float buffers, all of one
// length, and hands them out in that order; none at all is the state before
// the first step.
Result<std::vector<at::Tensor>> buffers_named(ServerOptimizerState& state, std::span<const std::string_view> names,
                                              std::string_view optimizer) {
  if (state.buffers.empty()) return std::vector<at::Tensor>{};
  if (state.buffers.size() != names.size()) {
    return Status::invalid_argument("a " + std::string(optimizer) + " server optimizer's state has " +
                                    std::to_string(names.size()) + " buffer(s), got " +
                                    std::to_string(state.buffers.size()));
  }
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < names.size(); ++i) {
    auto& [name, tensor] = state.buffers[i];
    if (name != names[i] || !tensor.defined() || tensor.dim() != 1 || !tensor.is_floating_point() ||
        (!out.empty() && tensor.numel() != out.front().numel())) {
      return Status::invalid_argument("a " + std::string(optimizer) + " server optimizer's buffer " +
                                      std::to_string(i) + " must be '" + std::string(names[i]) +
                                      "', 1-D float, as long as the others");
    }
    out.push_back(std::move(tensor));
  }
  return out;
}

class SgdStep final : public ServerOptimizer {
 public:
  explicit SgdStep(double learning_rate) : learning_rate_(learning_rate) {}

  Result<at::Tensor> step(const at::Tensor& global, const at::Tensor& aggregate) override {
    COHORT_RETURN_IF_ERROR(check_same_shape(global, aggregate));
    ++steps_;
    return global.add(aggregate, learning_rate_);
  }
  ServerOptimizerState state() const override { return {steps_, {}}; }
  Status restore(ServerOptimizerState state) override {
    COHORT_RETURN_IF_ERROR(buffers_named(state, {}, "sgd").status());
    steps_ = state.steps;
    return Status();
  }
  std::string description() const override { return "sgd(lr=" + number_text(learning_rate_) + ")"; }

 private:
  double learning_rate_;
  uint64_t steps_ = 0;
};

class MomentumStep final : public ServerOptimizer {
 public:
  MomentumStep(double learning_rate, double beta) : learning_rate_(learning_rate), beta_(beta) {}

  Result<at::Tensor> step(const at::Tensor& global, const at::Tensor& aggregate) override {
    COHORT_RETURN_IF_ERROR(check_same_shape(global, aggregate));
    if (m_.defined() && !m_.sizes().equals(aggregate.sizes())) {
      return Status::invalid_argument("the server momentum does not fit the aggregate");
    }
    m_ = m_.defined() ? m_ * beta_ + aggregate : aggregate.clone();
    ++steps_;
    return global.add(m_, learning_rate_);
  }
  ServerOptimizerState state() const override {
    ServerOptimizerState state{steps_, {}};
    if (m_.defined()) state.buffers.emplace_back("m", m_);
    return state;
  }
  Status restore(ServerOptimizerState state) override {
    static constexpr std::string_view kBuffers[] = {"m"};
    COHORT_ASSIGN_OR_RETURN(std::vector<at::Tensor> buffers, buffers_named(state, kBuffers, "momentum"));
    m_ = buffers.empty() ? at::Tensor() : buffers[0];
    steps_ = state.steps;
    return Status();
  }
  std::string description() const override {
    return "momentum(lr=" + number_text(learning_rate_) + ", momentum=" + number_text(beta_) + ")";
  }

 private:
  double learning_rate_;
  double beta_;
  at::Tensor m_;  // undefined before the first step
  uint64_t steps_ = 0;
};

// v's update, given v and Delta^2.
using SecondMoment = std::function<at::Tensor(const at::Tensor& v, const at::Tensor& squared)>;

class AdaptiveStep final : public ServerOptimizer {
 public:
  AdaptiveStep(std::string name, double learning_rate, double beta1, double beta2, double tau, SecondMoment update_v)
      : name_(std::move(name)),
        learning_rate_(learning_rate),
        beta1_(beta1),
        beta2_(beta2),
        tau_(tau),
        update_v_(std::move(update_v)) {}

  Result<at::Tensor> step(const at::Tensor& global, const at::Tensor& aggregate) override {
    COHORT_RETURN_IF_ERROR(check_same_shape(global, aggregate));
    if (!m_.defined()) {
      m_ = at::zeros_like(aggregate);
      v_ = at::full_like(aggregate, tau_ * tau_);
    } else if (!m_.sizes().equals(aggregate.sizes())) {
      return Status::invalid_argument("the server optimizer's state does not fit the aggregate");
    }
    m_ = m_ * beta1_ + aggregate * (1.0 - beta1_);
    v_ = update_v_(v_, aggregate * aggregate);
    ++steps_;
    return global + learning_rate_ * m_ / (v_.sqrt() + tau_);
  }
  ServerOptimizerState state() const override {
    ServerOptimizerState state{steps_, {}};
    if (m_.defined()) state.buffers = {{"m", m_}, {"v", v_}};
    return state;
  }
  Status restore(ServerOptimizerState state) override {
    static constexpr std::string_view kBuffers[] = {"m", "v"};
    COHORT_ASSIGN_OR_RETURN(std::vector<at::Tensor> buffers, buffers_named(state, kBuffers, name_));
    m_ = buffers.empty() ? at::Tensor() : buffers[0];
    v_ = buffers.empty() ? at::Tensor() : buffers[1];
    steps_ = state.steps;
    return Status();
  }
  std::string description() const override {
    return name_ + "(lr=" + number_text(learning_rate_) + ", beta1=" + number_text(beta1_) +
           (name_ == "adagrad" ? "" : ", beta2=" + number_text(beta2_)) + ", tau=" + number_text(tau_) + ")";
  }

 private:
  std::string name_;
  double learning_rate_, beta1_, beta2_, tau_;
  SecondMoment update_v_;
  at::Tensor m_, v_;  // undefined before the first step
  uint64_t steps_ = 0;
};

Status unknown_optimizer(std::string_view name) {
  std::string known;
  for (std::string_view n : kNames) known += (known.empty() ? "" : ", ") + std::string(n);
  return Status::invalid_argument("unknown server optimizer '" + std::string(name) + "' (known: " + known + ")");
}

Result<std::unique_ptr<ServerOptimizer>> make_adaptive(std::string_view name, double learning_rate,
                                                       RuleParams& params) {
  COHORT_ASSIGN_OR_RETURN(const double beta1, read_parameter(params, "beta1", 0.9, /*is_beta=*/true));
  double beta2 = 0.0;
  if (name != "adagrad") {
    COHORT_ASSIGN_OR_RETURN(beta2, read_parameter(params, "beta2", 0.99, /*is_beta=*/true));
  }
  COHORT_ASSIGN_OR_RETURN(const double tau, read_parameter(params, "tau", 1e-3, /*is_beta=*/false));
  SecondMoment update_v;
  if (name == "adagrad") {
    update_v = [](const at::Tensor& v, const at::Tensor& squared) { return v + squared; };
  } else if (name == "adam") {
    update_v = [beta2](const at::Tensor& v, const at::Tensor& squared) { return v * beta2 + squared * (1.0 - beta2); };
  } else {
    update_v = [beta2](const at::Tensor& v, const at::Tensor& squared) {
      return v - (1.0 - beta2) * squared * at::sign(v - squared);
    };
  }
  return std::unique_ptr<ServerOptimizer>(
      std::make_unique<AdaptiveStep>(std::string(name), learning_rate, beta1, beta2, tau, std::move(update_v)));
}

}  // namespace

Result<std::unique_ptr<ServerOptimizer>> make_server_optimizer(std::string_view name, double learning_rate,
                                                               const std::map<std::string, std::string>& given) {
  if (!(learning_rate > 0.0)) {
    return Status::invalid_argument("the server learning rate must be > 0, got " + number_text(learning_rate));
  }
  RuleParams params(0, given);
  std::unique_ptr<ServerOptimizer> optimizer;
  if (name == "sgd") {
    optimizer = std::make_unique<SgdStep>(learning_rate);
  } else if (name == "momentum") {
    COHORT_ASSIGN_OR_RETURN(const double beta, read_parameter(params, "momentum", 0.9, /*is_beta=*/true));
    optimizer = std::make_unique<MomentumStep>(learning_rate, beta);
  } else if (name == "adagrad" || name == "adam" || name == "yogi") {
    COHORT_ASSIGN_OR_RETURN(optimizer, make_adaptive(name, learning_rate, params));
  } else {
    return unknown_optimizer(name);
  }
  COHORT_RETURN_IF_ERROR(params.check_all_used("server optimizer '" + std::string(name) + "'"));
  return optimizer;
}

}  // namespace cohort
