#pragma once

#include <gtest/gtest.h>

#include <filesystem>

#include "core/deid/deid_runner.h"
#include "tests/support/temp_dir.h"

namespace ppreid::deid {

// A dataset directory `in` and an output `out` (not created) in a fresh temporary directory.
class DeidRunFixture : public ::testing::Test {
 protected:
  std::filesystem::path in() const { return dir_ / "in"; }
  std::filesystem::path out() const { return dir_ / "out"; }
  DeidRunOptions options() const {
    DeidRunOptions o;
    o.in = in();
    o.out = out();
    o.threads = 2;
    return o;
  }
  bool out_is_empty() const {
    return !std::filesystem::exists(out()) ||
           std::filesystem::directory_iterator(out()) == std::filesystem::directory_iterator();
  }
  testing::TempDir dir_;
};

}  // namespace ppreid::deid
