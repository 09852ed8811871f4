// Wiring a coordinator for `cohort coordinator` and `cohort demo`: main
// builds the parts a Coordinator works with (coordinator.h), in the order
// that keeps a live job safe, and hands them over.
#pragma once

#include <memory>

#include <zmq.hpp>

#include "cohort/coordinator.h"

namespace cohort::cli {

// The job's lock first (a second instance must touch nothing of a live
// job, its endpoint included), then the machine's clock, the key, when [proof] is on the
// deterministic CPU kernels (before any tensor operation) and the ledger,
// then the listening channel, and the coordinator. `context` must outlive
// the coordinator. Errors: any of those steps' (lock_job,
// load_coordinator_identity, use_deterministic_cpu_training,
// open_job_ledger, listen_router, Coordinator::create).
Result<std::unique_ptr<Coordinator>> start_coordinator(zmq::context_t& context, JobConfig config,
                                                       const RuleRegistry& rules, Logger& log,
                                                       StartMode mode = StartMode::kFresh);

}  // namespace cohort::cli
