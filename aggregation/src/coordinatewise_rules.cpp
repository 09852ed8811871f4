// Registers the coordinate-wise and iterative rules and holds the steps
// they share.
#include "coordinatewise_rules.h"

#include <ATen/ATen.h>

#include <array>
#include <string>
#include <utility>

#include "rules.h"
#include "selection.h"

namespace cohort {

at::Tensor middle_of_sorted(const at::Tensor& sorted) {
  const int64_t n = sorted.size(0);
  return sorted.narrow(0, (n - 1) / 2, n % 2 == 1 ? 1 : 2);
}

std::vector<double> coordinate_shares(const at::Tensor& used_rows, int64_t n) {
  at::Tensor counts = at::bincount(used_rows.reshape({-1}), {}, n);
  return to_doubles(counts.to(at::kDouble).div_(static_cast<double>(used_rows.numel())));
}

Result<at::Tensor> context_vector(const at::Tensor& vector, const at::Tensor& rows,
                                  std::string_view rule, std::string_view field) {
  const int64_t d = rows.size(1);
  if (!vector.defined()) {
    return Status::failed_precondition(std::string(rule) + " needs context." + std::string(field) +
                                       " (a vector of d=" + std::to_string(d) + " values)");
  }
  if (vector.numel() != d) {
    return Status::failed_precondition(std::string(rule) + ": context." + std::string(field) +
                                       " has " + std::to_string(vector.numel()) +
                                       " values, the updates have d=" + std::to_string(d));
  }
  return vector.reshape({d}).to(rows.device(), rows.scalar_type());
}

namespace {

// In the order the choices are listed; "previous" last, as not every rule
// accepts it.
constexpr std::array<std::pair<std::string_view, StartPoint>, 4> kStartPoints = {{
    {"zero", StartPoint::kZero},
    {"mean", StartPoint::kMean},
    {"median", StartPoint::kMedian},
    {"previous", StartPoint::kPrevious},
}};

std::string_view start_point_name(StartPoint start) {
  for (const auto& [name, value] : kStartPoints) {
    if (value == start) return name;
  }
  return "zero";
}

}  // namespace

Result<StartPoint> read_start_point(RuleParams& params, std::string_view rule, StartPoint fallback,
                                    bool allow_previous) {
  COHORT_ASSIGN_OR_RETURN(std::string text,
                          params.get_string("start", std::string(start_point_name(fallback))));
  const size_t choices = allow_previous ? kStartPoints.size() : kStartPoints.size() - 1;
  std::string listed;
  for (size_t i = 0; i < choices; ++i) {
    if (text == kStartPoints[i].first) return kStartPoints[i].second;
    listed += (listed.empty() ? "" : " | ") + std::string(kStartPoints[i].first);
  }
  return Status::invalid_argument(std::string(rule) + " needs start = " + listed + ", got start='" +
                                  text + "'");
}

Result<at::Tensor> start_point(StartPoint start, const at::Tensor& rows,
                               std::span<const double> weights, const AggregationContext& context,
                               std::string_view rule) {
  switch (start) {
    case StartPoint::kMean:
      return combine_rows(rows, normalized_weights(weights, rows.size(0)));
    case StartPoint::kMedian:
      return coordinatewise_median(rows, /*row_shares=*/false).values;
    case StartPoint::kPrevious:
      if (context.previous.defined()) {
        return context_vector(context.previous, rows, rule, "previous");
      }
      break;
    case StartPoint::kZero:
      break;
  }
  return at::zeros({rows.size(1)}, rows.options());
}

void register_coordinatewise_rules(RuleRegistry& registry) {
  registry.add("median", make_median);
  registry.add("trimmed-mean", make_trimmed_mean);
  registry.add("meamed", make_meamed);
  registry.add("geometric-median", make_geometric_median);
  registry.add("centered-clipping", make_centered_clipping);
  registry.add("fltrust", make_fltrust);
}

}  // namespace cohort
