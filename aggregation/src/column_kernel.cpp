// The CPU selection kernel: cpu_column_means (selection.h).
//
// A tile is kTileBytes of consecutive coordinates (64 float32 or 32 float64
// columns). Its m rows are copied into a scratch block [m, lanes], so that
// sorted position p of every column of the tile is the row ("wire") p of the
// block, and one comparator of a sorting network is a min and a max of two
// wires, lane by lane: no branch depends on the data, and the block (m x 256
// bytes, 25 KB at m = 100) stays in the L1 cache.
#include <ATen/ATen.h>
#include <ATen/TensorIterator.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>

#include "network_kernels.h"
#include "selection.h"
#include "sorting_network.h"

namespace cohort {
namespace {

// An integer as wide as T, so that loops mixing the two vectorise.
template <typename T>
using LaneInt = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// 32-byte vectors of T (GCC and Clang vector extensions): one AVX2 register,
// two SSE2 ones. Loads go through memcpy (no alignment or aliasing
// assumptions). The functions returning them are always inlined: out of
// line, their ABI would differ between the AVX2 and the baseline code
// (GCC's -Wpsabi note, silenced from here to the end of the file, where the
// templates are instantiated).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
template <typename T>
struct Simd {
  static constexpr int64_t kWidth = 32 / static_cast<int64_t>(sizeof(T));
  typedef T Values __attribute__((vector_size(32)));
  typedef LaneInt<T> Ints __attribute__((vector_size(32)));
  typedef double Doubles __attribute__((vector_size(32)));  // 4 lanes

  // The vector's lanes [4 part, 4 part + 4) as doubles (part 1: float only).
  template <int kPart>
  __attribute__((always_inline)) static Doubles widen(const Values& v) {
    if constexpr (sizeof(T) == sizeof(double)) {
      return v;
    } else if constexpr (kPart == 0) {
      return __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3), Doubles);
    } else {
      return __builtin_convertvector(__builtin_shufflevector(v, v, 4, 5, 6, 7), Doubles);
    }
  }

  __attribute__((always_inline)) static Values load(const T* p) {
    Values v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  __attribute__((always_inline)) static Ints load(const LaneInt<T>* p) {
    Ints v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
};

// One thread's work on consecutive tiles. kAvx2: the AVX2 instruction set
// (the caller checked the CPU), otherwise SSE2 on x86-64 and plain C++
// elsewhere.
template <typename T, bool kAvx2>
class TileWorker {
  using Simd = cohort::Simd<T>;
  using VecT = typename Simd::Values;
  using VecI = typename Simd::Ints;
  using VecD = typename Simd::Doubles;

 public:
  static constexpr int64_t kLanes = kTileBytes / static_cast<int64_t>(sizeof(T));

  TileWorker(const WindowPlan& plan, const std::vector<const T*>& rows, int64_t d, T* out,
             bool credits)
      : plan_(plan),
        rows_(rows),
        d_(d),
        out_(out),
        block_(static_cast<T*>(std::aligned_alloc(64, static_cast<size_t>(plan.m * kTileBytes)))),
        row_credits_(credits ? rows.size() * Simd::kWidth : 0, 0) {
    TORCH_CHECK(block_ != nullptr, "column kernel: out of memory for the scratch block");
  }

  // The number of coordinates credited to each row so far (empty when not
  // asked for).
  std::vector<int64_t> credits() const {
    std::vector<int64_t> out(row_credits_.size() / Simd::kWidth, 0);
    for (size_t i = 0; i < row_credits_.size(); ++i) out[i / Simd::kWidth] += row_credits_[i];
    return out;
  }

  // Tiles [begin, end); false (the range left unfinished) on a NaN or when
  // `stop` is set by another thread's NaN.
  bool run(int64_t begin, int64_t end, const std::atomic<bool>& stop) {
    for (int64_t tile = begin; tile < end; ++tile) {
      if (stop.load(std::memory_order_relaxed) || !run_tile(tile)) return false;
    }
    return true;
  }

 private:
  bool run_tile(int64_t tile) {
    const int64_t first = tile * kLanes;
    const int64_t lanes = std::min(kLanes, d_ - first);
    if (!load(first, lanes)) return false;
    find_starts();
    write_means(first, lanes);
    if (!row_credits_.empty()) credit_rows(first, lanes);
    return true;
  }

  T* wire(int64_t p) const { return block_.get() + p * kLanes; }

  // Fills the block with the tile and sorts it through the network. The
  // rows' values two tiles further on are prefetched while this tile is
  // loaded, row by row, so that they are in the cache when their turn comes
  // (with m rows in flight the hardware prefetcher alone falls behind).
  bool load(int64_t first, int64_t lanes) {
    const int64_t ahead = first + 3 * kLanes <= d_ ? 2 * kLanes : 0;
#ifdef COHORT_X86_NETWORKS
    if constexpr (kAvx2) {
      if (lanes == kLanes) {
        if (!load_sorted_blocks_avx2(rows_.data(), first, plan_.sorted_blocks, ahead,
                                     block_.get())) {
          return false;
        }
        if (!copy_rows(kSortedBlock * plan_.sorted_blocks, first, lanes, ahead)) return false;
        apply(plan_.network_after_blocks);
        return true;
      }
    }
#endif
    if (!copy_rows(0, first, lanes, ahead)) return false;
    apply(plan_.network);
    return true;
  }

  // Rows [from, m) into their wires, zeros beyond `lanes`, prefetching
  // `ahead` values further on (none when 0). False on a NaN.
  bool copy_rows(int64_t from, int64_t first, int64_t lanes, int64_t ahead) {
    LaneInt<T> nan = 0;
    for (int64_t r = from; r < plan_.m; ++r) {
      T* dst = wire(r);
      if (ahead != 0) {
        const char* next = reinterpret_cast<const char*>(rows_[r] + first + ahead);
        for (int64_t byte = 0; byte < kTileBytes; byte += 64) __builtin_prefetch(next + byte, 0, 2);
      }
      std::memcpy(dst, rows_[r] + first, static_cast<size_t>(lanes) * sizeof(T));
      std::fill(dst + lanes, dst + kLanes, T(0));
      for (int64_t k = 0; k < kLanes; ++k) nan |= static_cast<LaneInt<T>>(dst[k] != dst[k]);
    }
    return nan == 0;
  }

  void apply(const std::vector<Comparator>& network) {
    const Comparator* c = network.data();
    const Comparator* end = c + network.size();
#ifdef COHORT_X86_NETWORKS
    if constexpr (kAvx2) {
      apply_network_avx2(c, end, block_.get());
    } else {
      apply_network_sse2(c, end, block_.get());
    }
#else
    apply_network_portable(c, end, block_.get());
#endif
  }

  // The window of each column: start_[k], its first sorted position.
  void find_starts() {
    if (plan_.kind != ColumnWindow::Kind::kNearMedian) {
      std::fill(start_.begin(), start_.end(), static_cast<LaneInt<T>>(plan_.start));
      return;
    }
    // The window starts after the positions p < drop whose value is farther
    // below the median than the value at p + width is above it (a
    // condition true for p < start and false after it; equal distances keep
    // the smaller value). The median and the distances are rounded to T as
    // in the ATen form, (sorted - median).abs().
    for (int64_t k = 0; k < kLanes; k += Simd::kWidth) {
      const VecT low = Simd::load(wire(plan_.mid_low) + k);
      const VecT median =
          plan_.m % 2 == 1 ? low : (low + Simd::load(wire(plan_.mid_high) + k)) / T(2);
      VecI start = {};
      for (int64_t p = 0; p < plan_.drop; ++p) {
        const VecT below = Simd::load(wire(p) + k);
        const VecT above = Simd::load(wire(p + plan_.width) + k);
        start -= (median - below) > (above - median);  // true is -1
      }
      std::memcpy(start_.data() + k, &start, sizeof(start));
    }
  }

  // The positions that may be in a window: all of them for kNearMedian.
  int64_t scan_begin() const {
    return plan_.kind == ColumnWindow::Kind::kNearMedian ? 0 : plan_.start;
  }
  int64_t scan_end() const {
    return plan_.kind == ColumnWindow::Kind::kNearMedian ? plan_.m : plan_.start + plan_.width;
  }

  // -1 in the lanes whose window holds sorted position p, 0 elsewhere.
  __attribute__((always_inline)) VecI in_window(const VecI& start, int64_t p) const {
    const auto pos = static_cast<LaneInt<T>>(p);
    return (start <= pos) & (start > pos - static_cast<LaneInt<T>>(plan_.width));
  }

  // Window sums in double. Only kNearMedian windows differ between columns;
  // the others are summed without a mask.
  void write_means(int64_t first, int64_t lanes) {
    std::array<T, kLanes> means;
    const bool masked = plan_.kind == ColumnWindow::Kind::kNearMedian;
    for (int64_t k = 0; k < kLanes; k += Simd::kWidth) {
      const VecI start = Simd::load(start_.data() + k);
      std::array<double, Simd::kWidth> sum{};
      for (int64_t p = scan_begin(); p < scan_end(); ++p) {
        VecT value = Simd::load(wire(p) + k);
        if (masked) value = in_window(start, p) ? value : VecT{};
        std::array<T, Simd::kWidth> values;
        std::memcpy(values.data(), &value, sizeof(value));
        // A plain loop: GCC vectorises the widening better than
        // __builtin_convertvector.
        for (int64_t lane = 0; lane < Simd::kWidth; ++lane) {
          sum[lane] += static_cast<double>(values[lane]);
        }
      }
      for (int64_t lane = 0; lane < Simd::kWidth; ++lane) {
        means[k + lane] = static_cast<T>(sum[lane] / static_cast<double>(plan_.width));
      }
    }
    std::memcpy(out_ + first, means.data(), static_cast<size_t>(lanes) * sizeof(T));
  }

  // Credits a row for each column of the tile whose window holds one of its
  // values: every value strictly between the window's smallest and largest
  // values is in it; of the rows holding the smallest (largest), the ones
  // listed first get the window's copies of it.
  void credit_rows(int64_t first, int64_t lanes) {
    std::array<T, Simd::kWidth> partial;
    for (int64_t k = 0; k < kLanes; k += Simd::kWidth) {
      if (k >= lanes) break;
      const VecI start = Simd::load(start_.data() + k);
      // The window's ends: its min and max (a kTrimmed window is known as a
      // set only), and how many of its values equal each.
      VecT lowest = Simd::load(wire(scan_end() - 1) + k);
      VecT highest = Simd::load(wire(scan_begin()) + k);
      for (int64_t p = scan_begin(); p < scan_end(); ++p) {
        const VecT value = Simd::load(wire(p) + k);
        const VecI in = in_window(start, p);
        lowest = (in & (value < lowest)) ? value : lowest;
        highest = (in & (value > highest)) ? value : highest;
      }
      VecI need_low = {};
      VecI need_high = {};
      for (int64_t p = scan_begin(); p < scan_end(); ++p) {
        const VecT value = Simd::load(wire(p) + k);
        const VecI in = in_window(start, p);
        need_low -= in & (value == lowest);
        need_high -= in & (value == highest) & (lowest != highest);
      }
      const int64_t count = std::min<int64_t>(Simd::kWidth, lanes - k);
      for (size_t r = 0; r < rows_.size(); ++r) {
        const T* source = rows_[r] + first + k;
        VecT value;
        if (count == Simd::kWidth) {
          value = Simd::load(source);
        } else {  // the lanes past the last column get no credit below
          partial.fill(T(0));
          std::memcpy(partial.data(), source, static_cast<size_t>(count) * sizeof(T));
          value = Simd::load(partial.data());
        }
        const VecI inside = (value > lowest) & (value < highest);
        const VecI take_low = (value == lowest) & (need_low > 0);
        const VecI take_high = (value == highest) & (need_high > 0);
        need_low += take_low;  // true is -1
        need_high += take_high;
        VecI credit = inside | take_low | take_high;
        if (count < Simd::kWidth) {
          for (int64_t lane = count; lane < Simd::kWidth; ++lane) credit[lane] = 0;
        }
        LaneInt<T>* counted = row_credits_.data() + r * Simd::kWidth;
        const VecI total = Simd::load(counted) - credit;  // true is -1
        std::memcpy(counted, &total, sizeof(total));
      }
    }
  }

  const WindowPlan& plan_;
  const std::vector<const T*>& rows_;
  int64_t d_;
  T* out_;
  std::unique_ptr<T, FreeDeleter> block_;
  std::array<LaneInt<T>, kLanes> start_{};
  std::vector<LaneInt<T>> row_credits_;  // per row, Simd::kWidth lanes
};

// The tile loop compiled twice: for AVX2 (its loops vectorised 256 bits wide)
// and for the baseline instruction set. `flatten` inlines the worker into
// each.
#ifdef COHORT_X86_NETWORKS
template <typename T>
__attribute__((target("avx2"), flatten)) bool run_tiles_avx2(TileWorker<T, true>& worker,
                                                            int64_t begin, int64_t end,
                                                            const std::atomic<bool>& stop) {
  return worker.run(begin, end, stop);
}
#endif

template <typename T>
__attribute__((flatten)) bool run_tiles_baseline(TileWorker<T, false>& worker, int64_t begin,
                                                 int64_t end, const std::atomic<bool>& stop) {
  return worker.run(begin, end, stop);
}

bool cpu_has_avx2() {
#ifdef COHORT_X86_NETWORKS
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  return has_avx2;
#else
  return false;
#endif
}

// Calls body(first, count) on ranges of consecutive tiles covering [0, tiles),
// in parallel on ATen's intra-op threads (at::get_num_threads()). Not
// at::parallel_for: that is a header template, and in code compiled without
// OpenMP, as this library is, it runs the whole range on the calling thread.
// TensorIterator::for_each is the same loop compiled inside libtorch, so the
// tiles go through it as the elements of a tensor of tile numbers.
void for_each_tile_range(int64_t tiles, int64_t grain,
                         const std::function<void(int64_t, int64_t)>& body) {
  if (tiles <= 0) return;
  at::Tensor numbers = at::arange(tiles, at::TensorOptions().dtype(at::kLong));
  at::TensorIterator iter = at::TensorIteratorConfig().add_const_input(numbers).build();
  iter.for_each(
      [&](char** data, const int64_t* strides, int64_t size0, int64_t size1) {
        for (int64_t j = 0; j < size1; ++j) {
          const char* column = data[0] + j * strides[1];
          if (strides[0] == static_cast<int64_t>(sizeof(int64_t))) {
            body(*reinterpret_cast<const int64_t*>(column), size0);
            continue;
          }
          for (int64_t i = 0; i < size0; ++i) {
            body(*reinterpret_cast<const int64_t*>(column + i * strides[0]), 1);
          }
        }
      },
      grain);
}

// Fills `out` [d] and, when `credits` is given, the number of credited
// coordinates per row, using the instruction set kAvx2. False on a NaN.
template <typename T, bool kAvx2>
bool column_means_by_tiles(const WindowPlan& plan, const std::vector<const T*>& rows, int64_t d,
                           T* out, std::vector<int64_t>* credits) {
  constexpr int64_t kLanes = TileWorker<T, kAvx2>::kLanes;
  const int64_t tiles = (d + kLanes - 1) / kLanes;
  // Enough tiles per thread to pay for it: about 256K values.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / (plan.m * kLanes));
  std::atomic<bool> saw_nan{false};
  std::mutex credits_mutex;
  for_each_tile_range(tiles, grain, [&](int64_t first, int64_t count) {
    TileWorker<T, kAvx2> worker(plan, rows, d, out, credits != nullptr);
    bool finished = false;
#ifdef COHORT_X86_NETWORKS
    if constexpr (kAvx2) {
      finished = run_tiles_avx2(worker, first, first + count, saw_nan);
    } else {
      finished = run_tiles_baseline(worker, first, first + count, saw_nan);
    }
#else
    finished = run_tiles_baseline(worker, first, first + count, saw_nan);
#endif
    if (!finished) {
      saw_nan.store(true, std::memory_order_relaxed);
      return;
    }
    if (credits != nullptr) {
      const std::vector<int64_t> counted = worker.credits();
      std::lock_guard<std::mutex> lock(credits_mutex);
      for (size_t r = 0; r < credits->size(); ++r) (*credits)[r] += counted[r];
    }
  });
  return !saw_nan.load();
}

template <typename T>
std::optional<ColumnMeans> cpu_column_means_of(const at::Tensor& rows,
                                               const std::vector<int64_t>& subset,
                                               const WindowPlan& plan, bool row_shares,
                                               KernelIsa isa) {
  const int64_t n = rows.size(0);
  const int64_t d = rows.size(1);
  at::Tensor contiguous = rows.contiguous();
  const T* data = contiguous.data_ptr<T>();
  std::vector<const T*> row_data;
  row_data.reserve(subset.size());
  for (int64_t i : subset) row_data.push_back(data + i * d);
  ColumnMeans result;
  result.values = at::empty({d}, rows.options());
  std::vector<int64_t> credits(row_shares ? subset.size() : 0, 0);
  std::vector<int64_t>* counted = row_shares ? &credits : nullptr;
  T* out = result.values.data_ptr<T>();
  const bool finished = isa == KernelIsa::kBest && cpu_has_avx2()
                            ? column_means_by_tiles<T, true>(plan, row_data, d, out, counted)
                            : column_means_by_tiles<T, false>(plan, row_data, d, out, counted);
  if (!finished) return std::nullopt;
  if (row_shares) {
    result.row_shares.assign(static_cast<size_t>(n), 0.0);
    const double total = static_cast<double>(plan.width) * static_cast<double>(d);
    for (size_t r = 0; r < subset.size(); ++r) {
      result.row_shares[subset[r]] += total > 0.0 ? static_cast<double>(credits[r]) / total
                                                  : 1.0 / static_cast<double>(subset.size());
    }
  }
  return result;
}

}  // namespace

std::optional<ColumnMeans> cpu_column_means(const at::Tensor& rows,
                                            std::span<const int64_t> subset,
                                            ColumnWindow window, bool row_shares,
                                            KernelIsa isa) {
  TORCH_CHECK(rows.dim() == 2, "column kernel: rows must be [n, d]");
  const int64_t n = rows.size(0);
  std::vector<int64_t> members(subset.begin(), subset.end());
  if (members.empty()) {
    members.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) members[i] = i;
  }
  for (int64_t i : members) {
    TORCH_CHECK(i >= 0 && i < n, "column kernel: row ", i, " of ", n, " rows");
  }
  const auto m = static_cast<int64_t>(members.size());
  const int64_t drop = window.drop;
  switch (window.kind) {
    case ColumnWindow::Kind::kMedian:
      TORCH_CHECK(m >= 1, "column kernel: the median needs a row");
      break;
    case ColumnWindow::Kind::kTrimmed:
      TORCH_CHECK(drop >= 0 && m >= 2 * drop + 1, "column kernel: cannot trim ", drop,
                  " values at each end of ", m);
      break;
    case ColumnWindow::Kind::kNearMedian:
      TORCH_CHECK(drop >= 0 && m >= drop + 1, "column kernel: cannot drop ", drop, " of ", m,
                  " values");
      break;
  }
  if (!rows.device().is_cpu() || m > kMaxKernelRows) return std::nullopt;
  const at::ScalarType dtype = rows.scalar_type();
  if (dtype != at::kFloat && dtype != at::kDouble) return std::nullopt;
  const WindowPlan plan = plan_window(m, window);
  if (dtype == at::kFloat) {
    return cpu_column_means_of<float>(rows, members, plan, row_shares, isa);
  }
  return cpu_column_means_of<double>(rows, members, plan, row_shares, isa);
}

}  // namespace cohort
