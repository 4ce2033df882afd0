#include "core/reid/train_config.h"

#include <algorithm>
#include <cmath>

#include "core/util/config.h"

namespace ppreid::reid {
namespace {

void read_loss_weight(util::ConfigReader& r, const char* key, double& weight, bool& enabled) {
  r.get(key, weight, 0.0, 1e6);
  enabled = weight > 0.0;
}

TrainConfig parse(util::ConfigReader root, const std::string& source) {
  TrainConfig c;
  read_profile_sections(root, c.profile);
  c.profile.source = source;

  auto model = root.section("model");
  model.get_choice("arch", c.backbone.arch, {"resnet50", "resnet18", "resnet_small", "resnet_tiny"});
  model.get("last_stride_one", c.backbone.last_stride_one);
  model.get_choice("activation", c.backbone.activation, {"relu", "sigmoid"});
  model.get("strides", c.backbone.strides);
  model.finish();

  auto loss = root.section("loss");
  LossWeights& w = c.loss.weights;
  read_loss_weight(loss, "id_weight", w.id, w.use_id);
  read_loss_weight(loss, "triplet_weight", w.triplet, w.use_triplet);
  read_loss_weight(loss, "center_weight", w.center, w.use_center);
  read_loss_weight(loss, "centroid_weight", w.centroid, w.use_centroid);
  loss.get("label_smoothing", c.loss.label_smoothing, 0.0, 0.99);
  loss.get("margin", c.loss.margin, 0.0, 100.0);
  loss.finish();
  if (!w.use_id && !w.use_triplet && !w.use_center && !w.use_centroid)
    loss.fail("id_weight", "every loss is switched off; give at least one a positive weight");

  auto opt = root.section("optimizer");
  opt.get("lr", c.optimizer.lr, 1e-8, 10.0);
  opt.get("weight_decay", c.optimizer.weight_decay, 0.0, 1.0);
  opt.get("center_lr", c.optimizer.center_lr, 0.0, 100.0);
  opt.finish();

  auto sched = root.section("schedule");
  sched.get("epochs", c.schedule.epochs, 1, 100000);
  sched.get("warmup_epochs", c.schedule.warmup_epochs, 0, 100000);
  sched.get("warmup_factor", c.schedule.warmup_factor, 1e-6, 1.0);
  sched.get("gamma", c.schedule.gamma, 1e-6, 1.0);
  if (sched.has("milestones")) {
    std::vector<int> m;
    sched.get("milestones", m);
    if (!std::is_sorted(m.begin(), m.end()) || (!m.empty() && m.front() < 1))
      sched.fail("milestones", "must be increasing epoch numbers >= 1");
    c.schedule.milestones = m;
  }
  sched.finish();

  auto eval = root.section("eval");
  eval.get_choice("metric", c.eval.metric, {"euclidean", "cosine"});
  eval.get("centroids", c.eval.centroids);
  {
    std::string protocol = to_string(c.eval.centroid_protocol);
    eval.get_choice("centroid_protocol", protocol,
                    std::vector<std::string>(std::begin(kCentroidProtocolNames),
                                             std::end(kCentroidProtocolNames)));
    c.eval.centroid_protocol = parse_centroid_protocol(protocol);
  }
  eval.get("every", c.eval.every, 0, 100000);
  eval.get("batch_size", c.eval.batch_size, 1, 4096);
  eval.finish();

  auto dist = root.section("distributed");
  dist.get_choice("batch_norm", c.distributed.batch_norm, {"local", "sync"});
  dist.get("bucket_mb", c.distributed.bucket_mb, 0.0, 4096.0);
  dist.get("overlap", c.distributed.overlap);
  dist.get("timeout_seconds", c.distributed.timeout_seconds, 0.001, 604800.0);
  dist.finish();

  if (c.profile.loader.k < 2 && (w.use_triplet || w.use_centroid))
    root.section("loader").fail("k", "triplet and centroid losses need k >= 2 images per identity");
  root.finish();
  return c;
}

}  // namespace

double ScheduleOptions::lr_at(double base_lr, int epoch) const {
  double factor = 1.0;
  if (epoch < warmup_epochs) {
    double alpha = static_cast<double>(epoch) / warmup_epochs;
    factor = warmup_factor * (1.0 - alpha) + alpha;
  }
  int passed = static_cast<int>(std::upper_bound(milestones.begin(), milestones.end(), epoch) -
                                milestones.begin());
  return base_lr * factor * std::pow(gamma, passed);
}

TrainConfig load_train_config(const std::filesystem::path& file) {
  return parse(util::ConfigReader::from_file(file), file.string());
}

TrainConfig parse_train_config(const std::string& yaml, const std::string& file_label) {
  return parse(util::ConfigReader::from_string(yaml, file_label), file_label);
}

}  // namespace ppreid::reid
