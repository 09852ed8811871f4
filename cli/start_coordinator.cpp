#include "start_coordinator.h"

#include "cohort/proof_of_learning.h"
#include "cohort/router_channel.h"

namespace cohort::cli {

Result<std::unique_ptr<Coordinator>> start_coordinator(zmq::context_t& context, JobConfig config,
                                                       const RuleRegistry& rules, Logger& log, StartMode mode) {
  COHORT_ASSIGN_OR_RETURN(FileLock lock, lock_job(config));
  COHORT_ASSIGN_OR_RETURN(Identity key, load_coordinator_identity(config, log));
  auto identity = std::make_shared<const Identity>(std::move(key));
  std::unique_ptr<Ledger> ledger;
  if (config.proof.segment_steps > 0) {
    // It pins ATen's CPU kernels: before any tensor operation.
    COHORT_RETURN_IF_ERROR(use_deterministic_cpu_training());
    COHORT_ASSIGN_OR_RETURN(ledger, open_job_ledger(config, *identity));
  }
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Channel> channel, listen_router(context, config.network, *identity, log));
  CoordinatorParts parts{std::move(lock), std::make_shared<const SystemClock>(), std::move(identity), std::move(ledger),
                         std::move(channel)};
  return Coordinator::create(std::move(config), std::move(parts), rules, log, mode);
}

}  // namespace cohort::cli
