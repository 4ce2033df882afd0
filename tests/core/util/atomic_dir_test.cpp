#include "core/util/atomic_dir.h"

#include <gtest/gtest.h>

#include "core/util/atomic_file.h"
#include "tests/support/temp_dir.h"

namespace ppreid::util {
namespace {

namespace fs = std::filesystem;

struct Crash {};

void write_version(const fs::path& dir, const std::string& version,
                   std::optional<AtomicDirStep> crash_at = std::nullopt,
                   const std::function<void()>& while_filling = nullptr) {
  write_directory_atomic(
      dir,
      [&](const fs::path& tmp) {
        if (while_filling) while_filling();
        write_file_atomic(tmp / "data", version);
        write_file_atomic(tmp / "done", "");
      },
      [&](AtomicDirStep s) {
        if (crash_at && s == *crash_at) throw Crash{};
      });
}

std::string complete_version(const fs::path& dir) {
  fs::path src = complete_directory(dir, "done");
  return src.empty() ? "" : read_file(src / "data");
}

TEST(AtomicDir, CrashAtEachStepLeavesOneCompleteVersion) {
  for (auto [step, expected] : {std::pair{AtomicDirStep::kFilled, "v1"},
                                std::pair{AtomicDirStep::kPreviousMovedAside, "v1"},
                                std::pair{AtomicDirStep::kSwappedIn, "v2"}}) {
    ppreid::testing::TempDir tmp;
    write_version(tmp / "ckpt", "v1");
    EXPECT_THROW(write_version(tmp / "ckpt", "v2", step), Crash);
    EXPECT_EQ(complete_version(tmp / "ckpt"), expected);
  }
}

// A call interrupted between its two renames leaves only `.ckpt.old` complete. The next call must
// not delete it before its own swap: it puts it back in place first, so the previous version
// stays readable during the whole next write.
TEST(AtomicDir, NextWriteRestoresAVersionLeftAsideByAnInterruptedSwap) {
  ppreid::testing::TempDir tmp;
  const fs::path dir = tmp / "ckpt";
  write_version(dir, "v1");
  EXPECT_THROW(write_version(dir, "v2", AtomicDirStep::kPreviousMovedAside), Crash);
  EXPECT_FALSE(fs::exists(dir));
  bool checked = false;
  write_version(dir, "v2b", std::nullopt, [&] {
    EXPECT_EQ(complete_directory(dir, "done"), dir);
    EXPECT_EQ(read_file(dir / "data"), "v1");
    checked = true;
  });
  EXPECT_TRUE(checked);
  EXPECT_EQ(complete_version(dir), "v2b");
  EXPECT_FALSE(fs::exists(tmp / ".ckpt.old"));
}

}  // namespace
}  // namespace ppreid::util
