#include "core/deid/pis/pis_config.h"

#include "core/util/config.h"

namespace ppreid::deid::pis {
namespace {

PisConfig parse(util::ConfigReader root, const std::string& source) {
  PisConfig c;
  read_profile_sections(root, c.profile);
  c.profile.source = source;
  root.get("pad_square", c.pad_square);

  auto model = root.section("model");
  if (model.has("channels")) {
    std::vector<int> channels;
    model.get("channels", channels);
    if (channels.size() < 2 || channels.size() > 8)
      model.fail("channels", "give 2 to 8 widths, one per scale");
    for (int ch : channels)
      if (ch < 4 || ch > 1024) model.fail("channels", "every width must be in 4..1024");
    c.network.channels = channels;
  }
  model.get("blocks", c.network.blocks, 1, 16);
  model.get("latent_scales", c.network.latent_scales, 1, 8);
  model.get("latent_channels", c.network.latent_channels, 1, 1024);
  model.get_choice("posterior_variance", c.network.posterior_variance, {"unit", "learned"});
  model.get_choice("app_pooling", c.network.app_pooling, {"average", "flatten"});
  if (c.network.latent_scales > static_cast<int>(c.network.channels.size()))
    model.fail("latent_scales", "cannot exceed the number of scales (" +
                                    std::to_string(c.network.channels.size()) + ")");
  model.finish();

  const int scales = static_cast<int>(c.network.channels.size());
  const int divisor = 1 << (scales - 1);
  if (c.input_height() % divisor != 0 || c.input_width() % divisor != 0)
    root.section("image").fail("height", "the input (" + std::to_string(c.input_height()) + "x" +
                                             std::to_string(c.input_width()) +
                                             ") must be divisible by 2^(scales-1) = " +
                                             std::to_string(divisor) +
                                             "; change image size or model.channels");

  auto feat = root.section("feature_loss");
  feat.get_choice("network", c.features.network, {"random", "reid", "vgg19"});
  std::string path;
  feat.get("reid_model", path);
  c.features.reid_model = path;
  path.clear();
  feat.get("vgg19_weights", path);
  c.features.vgg19_weights = path;
  feat.get("alpha_rec", c.features.alpha_rec, 0.0, 1e6);
  feat.get("pixel_l1", c.features.pixel_l1, 0.0, 1e6);
  feat.get("random_seed", c.features.random_seed);
  if (c.features.network == "vgg19" && c.features.vgg19_weights.empty())
    feat.fail("vgg19_weights", "network vgg19 needs the path of torchvision's vgg19 state_dict");
  if (c.features.alpha_rec == 0 && c.features.pixel_l1 == 0)
    feat.fail("alpha_rec", "alpha_rec and pixel_l1 are both 0: nothing would teach reconstruction");
  feat.finish();

  auto t = root.section("train");
  t.get("batch_size", c.train.batch_size, 2, 4096);
  t.get("lr", c.train.lr, 1e-8, 10.0);
  t.get("lr_decay", c.train.lr_decay, 1e-6, 1.0);
  t.get("lr_decay_every", c.train.lr_decay_every, 0, 100000000);
  t.get("stage1_steps", c.train.stage1_steps, 0, 100000000);
  t.get("stage2_steps", c.train.stage2_steps, 0, 100000000);
  t.get("kl_weight", c.train.kl_weight, 0.0, 1e6);
  t.get("kl_warmup_steps", c.train.kl_warmup_steps, 0, 100000000);
  t.get("cycle_weight", c.train.cycle_weight, 0.0, 1e6);
  t.get("app_weight", c.train.app_weight, 0.0, 1e6);
  t.get("flip_prob", c.train.flip_prob, 0.0, 1.0);
  t.get("checkpoint_every", c.train.checkpoint_every, 1, 100000000);
  t.get("grid_every", c.train.grid_every, 0, 100000000);
  t.get("log_every", c.train.log_every, 1, 100000000);
  if (c.train.stage1_steps + c.train.stage2_steps == 0)
    t.fail("stage1_steps", "stage1_steps + stage2_steps is 0: there is nothing to train");
  t.finish();

  auto s = root.section("shift");
  s.get("k", c.shift.k, 2, 16);
  s.get("lambda", c.shift.lambda, 0.0, 1.0);
  s.get("max_weight", c.shift.max_weight, 0.0, 1.0);
  s.get_choice("sample", c.shift.sample, {"mean", "sample"});
  s.get("batch_size", c.shift.batch_size, 1, 4096);
  s.finish();

  root.finish();
  return c;
}

}  // namespace

PisConfig load_pis_config(const std::filesystem::path& file) {
  return parse(util::ConfigReader::from_file(file), file.string());
}

PisConfig parse_pis_config(const std::string& yaml, const std::string& file_label) {
  return parse(util::ConfigReader::from_string(yaml, file_label), file_label);
}

}  // namespace ppreid::deid::pis
