#include "simulations/replay.h"

#include "protocols/secagg/quantize.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/attacks/attack_images.h"
#include "simulations/population.h"
#include "tests/support/errors.h"
#include "tests/support/temp_dir.h"

namespace ppreid::sim {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A 32x32 crop with structure (a ramp, a box, a disc), and the same crop with its colours
// inverted: a stand-in for "what the site trained on differs from the raw image".
cv::Mat structured_image() {
  cv::Mat img(32, 32, CV_8UC3);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) img.at<cv::Vec3b>(y, x) = cv::Vec3b(40 + 5 * x, 200 - 4 * y, 90);
  cv::rectangle(img, {6, 4}, {18, 26}, {20, 30, 220}, cv::FILLED);
  cv::circle(img, {23, 12}, 6, {230, 220, 40}, cv::FILLED);
  return img;
}

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    raw_ = dir_ / "raw.png";
    inverted_ = dir_ / "inverted.png";
    const cv::Mat img = structured_image();
    cv::imwrite(raw_.string(), img);
    cv::Mat inv;
    cv::bitwise_not(img, inv);
    cv::imwrite(inverted_.string(), inv);
    SiteData site;
    site.site_id = "site-1";
    const SimKeys k = prepare_keys(dir_.path(), {site});
    keys_ = {k.aggregator_key, k.aggregator_pub, k.site_key("site-1"), k.allow_list, "site-1"};
    options_.model.model = "lenet";
    // 16x16 converges in about a second; the 32x32 recovery is GradientInversionTest's.
    options_.model.height = options_.model.width = 16;
    options_.iterations = 300;
    options_.seed = 1;
  }

  testing::TempDir dir_;
  fs::path raw_, inverted_;
  ReplayKeys keys_;
  ReplayOptions options_;
};

TEST_F(ReplayTest, TheAttackerGetsExactlyTheGradientTheSiteComputed) {
  std::vector<torch::Tensor> received;
  options_.iterations = 1;
  options_.on_received = [&](const std::vector<torch::Tensor>& r) { received = r; };
  const ReplaySummary s = replay_gradient_attacks({{"a", raw_, raw_, 13}}, keys_, options_);

  // The site's side, recomputed: the same model (seed + image index 0), label 13 mod 10.
  attacks::AttackModelOptions mo = options_.model;
  mo.seed = options_.seed;
  const attacks::AttackModel m = attacks::make_attack_model(mo);
  const auto expected =
      attacks::shared_gradient(m.gradient_model, attacks::load_attack_image(raw_, 16, 16), 3);
  ASSERT_EQ(received.size(), expected.size());
  for (std::size_t k = 0; k < expected.size(); ++k)
    EXPECT_TRUE(torch::equal(received[k], expected[k])) << m.names[k];
  ASSERT_EQ(s.attacks.size(), 1u);
  EXPECT_EQ(s.attacks[0].label, 3);
  // At least the float32 payload crossed the wire, plus framing and the SHA-256.
  std::size_t payload = 0;
  for (const auto& t : expected) payload += t.numel() * 4;
  EXPECT_GT(s.attacks[0].wire_bytes, payload);
  EXPECT_LT(s.attacks[0].wire_bytes, payload + 4096);
}

TEST_F(ReplayTest, IdlgOnTheFedSgdShareRecoversTheImageTrainedOnAndItsLabel) {
  options_.strip_dir = dir_ / "strips";
  // Without de-identification the raw image comes back; trained on the inverted image, the
  // attack recovers that one, far from the raw one.
  const ReplaySummary s = replay_gradient_attacks(
      {{"plain", raw_, raw_, 7}, {"inverted", raw_, inverted_, 2}}, keys_, options_);
  ASSERT_EQ(s.attacks.size(), 2u);
  const AttackRecord& plain = s.attacks[0];
  const AttackRecord& inverted = s.attacks[1];
  EXPECT_TRUE(plain.label_correct);
  EXPECT_TRUE(inverted.label_correct);
  EXPECT_LT(plain.mse_raw, 1e-3);
  EXPECT_EQ(plain.mse_raw, plain.mse_deid);
  EXPECT_GT(plain.ssim_raw, 0.9);
  EXPECT_LT(inverted.mse_deid, 1e-2);
  EXPECT_GT(inverted.mse_raw, 0.1);
  EXPECT_LT(inverted.ssim_raw, 0.5);
  EXPECT_DOUBLE_EQ(s.label_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(s.success_raw.at(1e-3), 0.5);
  EXPECT_DOUBLE_EQ(s.success_raw.at(1e-2), 0.5);
  EXPECT_DOUBLE_EQ(s.mean_mse_raw, (plain.mse_raw + inverted.mse_raw) / 2);

  // raw | de-identified | the snapshots reached (1, 10, 50) | final, each 4x.
  const cv::Mat strip = cv::imread(plain.strip.string());
  ASSERT_FALSE(strip.empty());
  EXPECT_EQ(strip.rows, 64);
  EXPECT_EQ(strip.cols % 64, 0);
  EXPECT_GE(strip.cols, 64 * 3);
  EXPECT_LE(strip.cols, 64 * 6);

  const nlohmann::json j = s.to_json(options_);
  EXPECT_EQ(j.at("mode"), "fedsgd");
  EXPECT_EQ(j.at("method"), "idlg");
  EXPECT_EQ(j.at("success_raw").at("1e-03"), 0.5);
  EXPECT_EQ(j.at("attacks").at(1).at("strip"), "inverted.png");
  for (const char* key : {"mse_raw", "psnr_raw", "ssim_raw", "mse_deid", "psnr_deid", "ssim_deid",
                          "label_correct", "iterations", "wire_bytes"})
    EXPECT_TRUE(j.at("attacks").at(0).contains(key)) << key;
}

TEST_F(ReplayTest, FedAvgSharesTurnIntoTheAverageGradient) {
  std::vector<torch::Tensor> received;
  options_.mode = ReplayMode::kFedAvg;
  options_.local_lr = 0.01;
  options_.local_steps = 1;
  options_.iterations = 1;
  options_.on_received = [&](const std::vector<torch::Tensor>& r) { received = r; };
  replay_gradient_attacks({{"a", raw_, raw_, 4}}, keys_, options_);
  attacks::AttackModelOptions mo = options_.model;
  mo.seed = options_.seed;
  const attacks::AttackModel m = attacks::make_attack_model(mo);
  const auto expected =
      attacks::shared_gradient(m.gradient_model, attacks::load_attack_image(raw_, 16, 16), 4);
  ASSERT_EQ(received.size(), expected.size());
  // One step: (w - (w - lr g)) / lr = g up to float32 rounding of the weights.
  for (std::size_t k = 0; k < expected.size(); ++k)
    EXPECT_TRUE(torch::allclose(received[k], expected[k], 1e-3, 1e-4)) << m.names[k];
}

TEST_F(ReplayTest, UnderSecureAggregationOneSitesMessageRevealsNothing) {
  // The same attack that recovers the plain image above, on the victim's masked update.
  options_.secure = ReplaySecure::kMasked;
  options_.secure_sites = 3;
  const ReplaySummary s =
      replay_gradient_attacks({{"plain", raw_, raw_, 7}, {"other", raw_, inverted_, 2}}, keys_, options_);
  EXPECT_GT(s.attacks[0].mse_raw, 0.05);
  EXPECT_LT(s.attacks[0].ssim_raw, 0.3);
  EXPECT_DOUBLE_EQ(s.success_raw.at(1e-2), 0.0);
  EXPECT_EQ(s.to_json(options_).at("secure_aggregation"), "masked");
  EXPECT_GT(s.attacks[0].wire_bytes, 0u);
}

TEST_F(ReplayTest, OnTheUnmaskedSumTheAttackerGetsTheMeanOfTheSites) {
  std::vector<torch::Tensor> received;
  options_.secure = ReplaySecure::kSum;
  options_.secure_sites = 2;
  options_.iterations = 1;
  // The first target's attack (the second one's sum has other sites and another model).
  options_.on_received = [&](const std::vector<torch::Tensor>& r) {
    if (received.empty()) received = r;
  };
  replay_gradient_attacks({{"a", raw_, raw_, 4}, {"b", raw_, inverted_, 6}}, keys_, options_);
  attacks::AttackModelOptions mo = options_.model;
  mo.seed = options_.seed;
  const attacks::AttackModel m = attacks::make_attack_model(mo);
  // Site 2 trains on the next target's image with its label shifted by its index (6 + 1).
  const auto g1 = attacks::shared_gradient(m.gradient_model, attacks::load_attack_image(raw_, 16, 16), 4);
  const auto g2 = attacks::shared_gradient(m.gradient_model, attacks::load_attack_image(inverted_, 16, 16), 7);
  ASSERT_EQ(received.size(), g1.size());
  secagg::Params p;
  const double step = secagg::quantization_step(p);  // two sites of weight 1: error < step
  for (std::size_t k = 0; k < g1.size(); ++k)
    EXPECT_LT((received[k] - (g1[k] + g2[k]) / 2).abs().max().item<double>(), step) << m.names[k];
}

TEST_F(ReplayTest, BadInputIsAClearError) {
  using testing::error_of;
  EXPECT_THAT(error_of([&] { replay_gradient_attacks({}, keys_, options_); }),
              HasSubstr("no images"));
  EXPECT_THAT(error_of([&] {
                replay_gradient_attacks({{"a", dir_ / "missing.png", raw_, 0}}, keys_, options_);
              }),
              HasSubstr("missing.png"));
  ReplayOptions square = options_;
  square.model.width = 12;
  EXPECT_THAT(error_of([&] { replay_gradient_attacks({{"a", raw_, raw_, 0}}, keys_, square); }),
              HasSubstr("square"));
  ReplayOptions fedavg = options_;
  fedavg.mode = ReplayMode::kFedAvg;
  fedavg.local_lr = 0;
  EXPECT_THAT(error_of([&] { replay_gradient_attacks({{"a", raw_, raw_, 0}}, keys_, fedavg); }),
              HasSubstr("local_lr"));
  EXPECT_THAT(error_of([] { parse_replay_mode("fedprox"); }), HasSubstr("fedsgd or fedavg"));
  // A site key the aggregator side does not admit: the handshake fails, naming the key.
  SiteData other;
  other.site_id = "site-9";
  const SimKeys elsewhere = prepare_keys(dir_ / "other", {other});
  ReplayKeys stranger = keys_;
  stranger.site_secret_key = elsewhere.site_key("site-9");
  EXPECT_NE(error_of([&] { replay_gradient_attacks({{"a", raw_, raw_, 0}}, stranger, options_); }),
            "(no ppreid::Error thrown)");
}

}  // namespace
}  // namespace ppreid::sim
