# Finds every third-party dependency once, as imported targets.
# scripts/bootstrap.sh installs them (Debian packages + the torch wheel).

find_package(PkgConfig REQUIRED)
find_package(CapnProto REQUIRED)
pkg_check_modules(ZMQ REQUIRED IMPORTED_TARGET libzmq)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
find_package(SQLite3 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)
find_path(CPPZMQ_INCLUDE_DIR zmq.hpp REQUIRED)
find_path(TOMLPP_INCLUDE_DIR toml++/toml.h REQUIRED)

# LibTorch. Either the torch wheel (scripts/bootstrap.sh passes
# torch.utils.cmake_prefix_path in CMAKE_PREFIX_PATH) or an official LibTorch
# zip (CMAKE_PREFIX_PATH=/path/to/libtorch). Torch's CUDA probe would try to
# run a GPU-detection program; with no GPU on the build machine we name the
# architectures instead (Ampere and Hopper; override with TORCH_CUDA_ARCH_LIST).
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(ENV{TORCH_CUDA_ARCH_LIST} "8.0;9.0")
endif()
find_package(Torch REQUIRED)

# The wheel's libtorch_cuda.so needs the NCCL/cuBLAS/... shipped beside it in
# site-packages/nvidia/*/lib, which are newer than /usr/local/cuda's. Point
# the linker's transitive-dependency search there first (runtime already uses
# libtorch_cuda's own $ORIGIN rpath).
file(GLOB COHORT_WHEEL_NVIDIA_LIBS LIST_DIRECTORIES true
     "${TORCH_INSTALL_PREFIX}/../nvidia/*/lib")
if(COHORT_WHEEL_NVIDIA_LIBS)
  list(JOIN COHORT_WHEEL_NVIDIA_LIBS ":" _cohort_rpath_link)
  add_link_options("LINKER:-rpath-link,${_cohort_rpath_link}")
endif()

add_library(cohort_torch INTERFACE)
target_link_libraries(cohort_torch INTERFACE ${TORCH_LIBRARIES})
target_compile_options(cohort_torch INTERFACE ${TORCH_CXX_FLAGS})

if(COHORT_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(COHORT_BUILD_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()
