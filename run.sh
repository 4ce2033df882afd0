#!/usr/bin/env bash
# The README's two commands:
#   ./run.sh demo   install missing Debian packages, build, generate the synthetic dataset
#   ./run.sh test   install missing Debian packages, build, run the whole test suite
# Other: ./run.sh build | bench | deps
set -euo pipefail
cd "$(dirname "$0")"

# Every dependency, from Debian 12's main archive (see the README's dependency table).
PACKAGES=(build-essential cmake pkg-config ccache
  libtorch-dev libopencv-dev libssl-dev libzmq3-dev cppzmq-dev libcereal-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev libyaml-cpp-dev libspdlog-dev
  nlohmann-json3-dev)
JOBS=${JOBS:-$(nproc)}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then return; fi
  say "installing missing packages: ${missing[*]}"
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "error: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() {
  deps
  say "configuring and building into build/ ($JOBS jobs)"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j "$JOBS"
}

case "${1:-}" in
  deps) deps ;;
  build) build ;;
  test)
    build
    say "running the test suite"
    ctest --test-dir build --output-on-failure -j "$JOBS" --timeout 600
    ;;
  demo)
    build
    say "generating the synthetic pedestrian dataset (profile: small) into demo-data/"
    ./build/ppreid synth --config small --out demo-data --force
    say "reading it back"
    ./build/ppreid data inspect demo-data
    ;;
  bench)
    build
    for b in build/bench_*; do [[ -x $b ]] && { say "$b"; "$b" --benchmark_min_time=0.5; }; done
    ;;
  *)
    echo "usage: ./run.sh demo | test | build | bench | deps" >&2
    exit 2
    ;;
esac
