#include "core/deid/pis/pis_config.h"

#include <gtest/gtest.h>

#include "core/util/error.h"

namespace ppreid::deid::pis {
namespace {

TEST(PisConfig, TinyProfileLoads) {
  PisConfig c = load_pis_config(std::string(PPREID_SOURCE_DIR) + "/configs/pis/tiny.yaml");
  EXPECT_EQ(c.input_height(), 64);
  EXPECT_EQ(c.input_width(), 32);
  EXPECT_EQ(c.features.alpha_rec, 5.0);
  EXPECT_EQ(c.shift.k, 2);
  EXPECT_EQ(c.shift.lambda, 0.5);
}

TEST(PisConfig, PadSquareWidensTheInput) {
  PisConfig c = parse_pis_config("image: {height: 64, width: 32}\npad_square: true\n", "t.yaml");
  EXPECT_EQ(c.input_width(), 64);
}

TEST(PisConfig, BadValuesNameTheKey) {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"model: {channels: [16]}", "model.channels"},
      {"model: {channels: [16, 32], latent_scales: 3}", "model.latent_scales"},
      {"image: {height: 66, width: 32}\nmodel: {channels: [8, 8, 8]}", "divisible"},
      {"feature_loss: {network: vgg19}", "feature_loss.vgg19_weights"},
      {"feature_loss: {alpha_rec: 0, pixel_l1: 0}", "nothing would teach"},
      {"feature_loss: {network: imagenet}", "feature_loss.network"},
      {"train: {stage1_steps: 0, stage2_steps: 0}", "nothing to train"},
      {"train: {lr: -1}", "train.lr"},
      {"shift: {sample: maybe}", "shift.sample"},
      {"model: {posterior_variance: tiny}", "model.posterior_variance"},
      {"trian: {lr: 0.1}", "trian"},
  };
  for (const Case& c : cases) {
    try {
      parse_pis_config(c.yaml, "p.yaml");
      ADD_FAILURE() << "accepted: " << c.yaml;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos)
          << c.yaml << " -> " << e.what();
      EXPECT_NE(std::string(e.what()).find("p.yaml"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace ppreid::deid::pis
