# Every dependency comes from a Debian 12 package; a missing one stops configure with the package
# name so `apt-get install` is one copy-paste away. run.sh installs all of them.

macro(ppreid_require found_var what package)
  if(NOT ${found_var})
    message(FATAL_ERROR
      "ppreid needs ${what}, which was not found.\n"
      "Install it with:  apt-get install ${package}\n"
      "(or run ./run.sh test, which installs every missing package)")
  endif()
endmacro()

find_package(PkgConfig QUIET)
ppreid_require(PkgConfig_FOUND "pkg-config" "pkg-config")

find_package(Torch QUIET)
ppreid_require(Torch_FOUND "LibTorch" "libtorch-dev")
# Torch's imported target carries -D_GLIBCXX_USE_CXX11_ABI etc. in TORCH_CXX_FLAGS.
set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS} ${TORCH_CXX_FLAGS}")

# c10d's Gloo process group: LibTorch exports it, its headers include Gloo's, and Gloo's own
# symbols come from Debian's separate libgloo.
find_library(GLOO_LIBRARY NAMES gloo)
find_path(GLOO_INCLUDE_DIR gloo/context.h)
if(GLOO_LIBRARY AND GLOO_INCLUDE_DIR)
  set(GLOO_FOUND TRUE)
endif()
ppreid_require(GLOO_FOUND "Gloo (headers and library, for c10d's ProcessGroupGloo)" "libgloo-dev")

find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs objdetect)
ppreid_require(OpenCV_FOUND "OpenCV 4 (core, imgproc, imgcodecs, objdetect)" "libopencv-dev")

find_package(OpenSSL QUIET)
ppreid_require(OPENSSL_FOUND "OpenSSL 3" "libssl-dev")

pkg_check_modules(ZMQ QUIET IMPORTED_TARGET libzmq)
ppreid_require(ZMQ_FOUND "ZeroMQ (libzmq)" "libzmq3-dev")
find_path(CPPZMQ_INCLUDE_DIR zmq.hpp)
if(CPPZMQ_INCLUDE_DIR)
  set(CPPZMQ_FOUND TRUE)
endif()
ppreid_require(CPPZMQ_FOUND "cppzmq (zmq.hpp)" "cppzmq-dev")

find_package(cereal QUIET)
ppreid_require(cereal_FOUND "Cereal" "libcereal-dev")

find_package(CLI11 QUIET)
ppreid_require(CLI11_FOUND "CLI11" "libcli11-dev")

find_package(yaml-cpp QUIET)
ppreid_require(yaml-cpp_FOUND "yaml-cpp" "libyaml-cpp-dev")

find_package(spdlog QUIET)
ppreid_require(spdlog_FOUND "spdlog" "libspdlog-dev")

find_package(nlohmann_json QUIET)
ppreid_require(nlohmann_json_FOUND "nlohmann-json" "nlohmann-json3-dev")

find_package(Threads REQUIRED)

if(PPREID_BUILD_TESTS)
  find_package(GTest QUIET)
  ppreid_require(GTest_FOUND "GoogleTest" "libgtest-dev")
endif()
if(PPREID_BUILD_BENCH)
  find_package(benchmark QUIET)
  ppreid_require(benchmark_FOUND "Google Benchmark" "libbenchmark-dev")
endif()

if(PPREID_WITH_NCCL)
  if(NOT TORCH_CUDA_LIBRARIES)
    message(FATAL_ERROR "PPREID_WITH_NCCL=ON needs a LibTorch built with CUDA; Debian's "
                        "libtorch-dev is CPU-only. Configure with -DPPREID_WITH_NCCL=OFF.")
  endif()
endif()
message(STATUS "ppreid: NCCL backend ${PPREID_WITH_NCCL} (Gloo is always built)")
