#include "core/reid/weights_import.h"

#include <gtest/gtest.h>

#include "core/reid/checkpoint.h"
#include "core/reid/state_dict.h"
#include "core/reid/torch_pickle.h"
#include "core/util/error.h"
#include "tests/support/temp_dir.h"

namespace ppreid::reid {
namespace {

// A torchvision-named resnet18 state_dict (backbone names without our prefix, plus fc.*), as a
// torch.save file, imported into a checkpoint whose backbone then holds exactly those values.
TEST(WeightsImport, TorchvisionNamesMapOntoTheBackbone) {
  testing::TempDir dir;
  torch::manual_seed(3);
  ReidModel donor(ModelOptions{BackboneOptions{"resnet18", true, "relu", true}, 0, true});
  NamedTensors torchvision;
  for (auto& [name, t] : donor->shared_state())
    if (name.rfind("backbone.", 0) == 0) torchvision.emplace_back("module." + name.substr(9), t);
  torchvision.emplace_back("fc.weight", torch::randn({1000, 512}));
  torchvision.emplace_back("fc.bias", torch::randn({1000}));
  save_state_dict(dir / "resnet18.pth", torchvision);

  ImportReport r = import_torchvision_resnet(dir / "resnet18.pth", "resnet18", dir / "ckpt");
  EXPECT_EQ(r.loaded, static_cast<int>(torchvision.size()) - 2);
  EXPECT_EQ(r.skipped, (std::vector<std::string>{"fc.weight", "fc.bias"}));
  ReidModel imported = load_checkpoint_model(dir / "ckpt");
  auto a = donor->shared_state(), b = imported->shared_state();
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].first.rfind("backbone.", 0) == 0) {
      EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
    }

  // The same file does not fit a resnet50: refused, naming what does not fit.
  try {
    import_torchvision_resnet(dir / "resnet18.pth", "resnet50", dir / "ckpt50");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not fit a resnet50"), std::string::npos) << e.what();
  }
}

TEST(WeightsImport, ExportedStateDictReadsBack) {
  testing::TempDir dir;
  ReidModel model(ModelOptions{BackboneOptions{"resnet_tiny", true, "relu", true}, 5, true});
  NamedTensors all = model->shared_state();
  for (auto& e : model->head_state()) all.push_back(e);
  save_state_dict(dir / "model.pt", all);
  NamedTensors back = read_torch_state_dict(dir / "model.pt");
  ASSERT_EQ(back.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(back[i].first, all[i].first);
    EXPECT_TRUE(torch::equal(back[i].second, all[i].second)) << all[i].first;
  }
}

}  // namespace
}  // namespace ppreid::reid
