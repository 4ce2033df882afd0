#include "core/deid/pis/pis_trainer.h"

#include <opencv2/imgcodecs.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <sstream>

#include "core/data/stickman.h"
#include "core/deid/pis/feature_network.h"
#include "core/deid/pis/pis_checkpoint.h"
#include "core/quality/image_quality.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "core/util/image.h"
#include "core/util/progress.h"
#include "core/util/rng.h"
#include "core/tensor/torch_threads.h"

namespace ppreid::deid::pis {
namespace fs = std::filesystem;
namespace {

torch::Tensor to_u8(const torch::Tensor& unit) {
  return (unit * 255.0).round().clamp(0, 255).to(torch::kUInt8);
}

// Each image's partner: the next image in the batch whose identity differs (searching
// cyclically); -1 when the whole batch is one identity.
std::vector<std::int64_t> partners_in_batch(const torch::Tensor& labels) {
  const auto n = labels.size(0);
  auto y = labels.accessor<std::int64_t, 1>();
  std::vector<std::int64_t> partner(n, -1);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t d = 1; d < n; ++d)
      if (y[(i + d) % n] != y[i]) {
        partner[i] = (i + d) % n;
        break;
      }
  return partner;
}

LatentGaussian select_rows(const LatentGaussian& g, const torch::Tensor& rows) {
  LatentGaussian out;
  for (const auto& m : g.mu) out.mu.push_back(m.index_select(0, rows));
  for (const auto& l : g.logvar) out.logvar.push_back(l.index_select(0, rows));
  return out;
}

std::vector<torch::Tensor> select_rows(const std::vector<torch::Tensor>& v, const torch::Tensor& rows) {
  std::vector<torch::Tensor> out;
  for (const auto& t : v) out.push_back(t.index_select(0, rows));
  return out;
}

// Mixes each valid row with its partner (k = 2, the target's weight `lambda`) and decodes with
// the target's own pose. Returns the rows used, the mixture and x_hat.
struct Shifted {
  torch::Tensor rows;
  LatentGaussian mixture;
  torch::Tensor image;
};

Shifted shift_with_partners(PisNet& net, const LatentGaussian& q,
                            const std::vector<torch::Tensor>& structure, const torch::Tensor& labels,
                            double lambda, bool sample) {
  std::vector<std::int64_t> partner = partners_in_batch(labels);
  std::vector<std::int64_t> rows, cols;
  for (size_t i = 0; i < partner.size(); ++i)
    if (partner[i] >= 0) rows.push_back(static_cast<std::int64_t>(i)), cols.push_back(partner[i]);
  Shifted s;
  if (rows.empty()) return s;
  s.rows = torch::tensor(rows, torch::kInt64);
  torch::Tensor pc = torch::tensor(cols, torch::kInt64);
  s.mixture = mix_latents({select_rows(q, s.rows), select_rows(q, pc)}, {lambda, 1.0 - lambda});
  std::vector<torch::Tensor> z = sample ? reparameterize(s.mixture) : s.mixture.mu;
  s.image = net->decode(z, select_rows(structure, s.rows));
  return s;
}

cv::Mat grid_image(PisNet& net, const PisTrainingSet& set, const Geometry& g,
                   const std::vector<int>& positions) {
  torch::NoGradGuard no_grad;
  auto b = set.at(positions);
  auto structure = net->structure(b.stickmen);
  LatentGaussian q = net->posterior(b.images, b.stickmen);
  torch::Tensor rec = net->decode(q.mu, structure);
  Shifted s = shift_with_partners(net, q, structure, b.labels, 0.5, false);
  std::vector<std::int64_t> partner = partners_in_batch(b.labels);
  std::vector<cv::Mat> rows;
  for (size_t i = 0; i < positions.size(); ++i) {
    auto tile = [&](const torch::Tensor& t) { return output_image(t, g, g.height, g.width); };
    cv::Mat blank(g.height, g.width, CV_8UC3, cv::Scalar(128, 128, 128));
    std::vector<cv::Mat> cols = {tile(b.images[i]), tile(rec[i]),
                                 partner[i] >= 0 ? tile(b.images[partner[i]]) : blank, blank};
    if (s.rows.defined()) {
      auto r = s.rows.accessor<std::int64_t, 1>();
      for (std::int64_t j = 0; j < r.size(0); ++j)
        if (r[j] == static_cast<std::int64_t>(i)) cols[3] = tile(s.image[j]);
    }
    cv::Mat row;
    cv::hconcat(cols, row);
    rows.push_back(row);
  }
  cv::Mat grid;
  cv::vconcat(rows, grid);
  return grid;
}

void write_png(const fs::path& file, const cv::Mat& image) {
  std::vector<std::uint8_t> bytes;
  if (!cv::imencode(".png", image, bytes)) throw Error("cannot encode " + file.string());
  fs::create_directories(file.parent_path());
  util::write_file_atomic(file, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

// One image per identity for the grid, up to 8, spread over the set.
std::vector<int> grid_positions(const PisTrainingSet& set) {
  std::vector<int> positions;
  std::set<int> seen;
  for (int i = 0; i < set.size() && positions.size() < 8; ++i)
    if (seen.insert(set.labels()[i]).second) positions.push_back(i);
  return positions;
}

double lr_at(const PisTrainOptions& t, int step) {
  if (t.lr_decay_every <= 0) return t.lr;
  return t.lr * std::pow(t.lr_decay, step / t.lr_decay_every);
}

double kl_weight_at(const PisTrainOptions& t, int step) {
  if (t.kl_warmup_steps <= 0) return t.kl_weight;
  return t.kl_weight * std::min(1.0, static_cast<double>(step) / t.kl_warmup_steps);
}

std::string fixed3(double v) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(3);
  s << v;
  return s.str();
}

}  // namespace

PisTrainingSet::PisTrainingSet(const data::Dataset& dataset, const Geometry& g) {
  std::vector<torch::Tensor> images, stickmen;
  std::map<int, int> label_of_pid;
  for (const auto& r : dataset.train) {
    const data::Pose* pose = dataset.pose(r);
    if (!pose || !data::usable_for_pose_conditioning(*pose)) {
      skipped_.push_back(r.path);
      continue;
    }
    images.push_back(to_u8((network_image(util::decode_image(dataset.absolute(r)), g) + 1.0) * 0.5));
    stickmen.push_back(to_u8(network_stickman(*pose, g)));
    auto [it, added] = label_of_pid.emplace(r.pid, static_cast<int>(label_of_pid.size()));
    labels_.push_back(it->second);
  }
  if (images.empty())
    throw Error("'" + dataset.root.string() + "': no training image has usable pose keypoints (" +
                (dataset.keypoints.empty() ? std::string("keypoints.csv is missing")
                                           : "every image lacks both shoulders or both hips") +
                "); PIS needs keypoints.csv (ppreid synth writes one)");
  num_ids_ = static_cast<int>(label_of_pid.size());
  if (num_ids_ < 2)
    throw Error("'" + dataset.root.string() +
                "': PIS training needs at least 2 identities with usable poses (identity shift "
                "mixes different people)");
  images_ = torch::stack(images);
  stickmen_ = torch::stack(stickmen);
}

PisTrainingSet::Batch PisTrainingSet::at(const std::vector<int>& positions) const {
  std::vector<std::int64_t> idx(positions.begin(), positions.end());
  torch::Tensor index = torch::tensor(idx, torch::kInt64);
  Batch b;
  b.images = images_.index_select(0, index).to(torch::kFloat32) / 127.5 - 1.0;
  b.stickmen = stickmen_.index_select(0, index).to(torch::kFloat32) / 255.0;
  std::vector<std::int64_t> labels;
  for (int p : positions) labels.push_back(labels_[p]);
  b.labels = torch::tensor(labels, torch::kInt64);
  return b;
}

PisTrainingSet::Batch PisTrainingSet::sample(int batch_size, util::Rng& rng, double flip_prob) const {
  std::vector<int> positions;
  std::vector<bool> flip;
  for (int i = 0; i < batch_size; ++i) {
    positions.push_back(static_cast<int>(rng.uniform_int(0, size() - 1)));
    flip.push_back(rng.bernoulli(flip_prob));
  }
  Batch b = at(positions);
  for (int i = 0; i < batch_size; ++i)
    if (flip[i]) {
      b.images[i].copy_(flip_image(b.images[i].unsqueeze(0)).squeeze(0));
      b.stickmen[i].copy_(flip_stickman(b.stickmen[i].unsqueeze(0)).squeeze(0));
    }
  return b;
}

PisLossParts pis_losses(PisNet& net, FeatureNetwork* features, const PisConfig& config,
                        const PisTrainingSet::Batch& batch, int stage, double kl_weight) {
  PisLossParts parts;
  auto structure = net->structure(batch.stickmen);
  LatentGaussian prior = net->prior(structure);
  LatentGaussian q = net->posterior(batch.images, batch.stickmen);
  torch::Tensor x_rec = net->decode(reparameterize(q), structure);
  torch::Tensor kl = kl_divergence(q, prior);
  torch::Tensor rec = reconstruction_loss(features, batch.images, x_rec, config.features);
  parts.total = kl_weight * kl + rec;
  parts.kl = kl.item<double>();
  parts.rec = rec.item<double>();
  parts.kl_weight = kl_weight;
  if (stage == 2) {
    Shifted s = shift_with_partners(net, q, structure, batch.labels, config.shift.lambda,
                                    /*sample=*/true);
    if (s.rows.defined() && config.train.cycle_weight > 0) {
      LatentGaussian q_hat = net->posterior(s.image, batch.stickmen.index_select(0, s.rows));
      torch::Tensor cycle = kl_divergence(s.mixture, q_hat);
      parts.total = parts.total + config.train.cycle_weight * cycle;
      parts.cycle = cycle.item<double>();
    }
    if (config.train.app_weight > 0) {
      torch::Tensor app = torch::cross_entropy_loss(net->classify(q.mu), batch.labels);
      parts.total = parts.total + config.train.app_weight * app;
      parts.app = app.item<double>();
    }
  }
  return parts;
}

nlohmann::json evaluate_reconstruction(PisNet& net, const PisTrainingSet& set, const Geometry& g,
                                       int max_images) {
  torch::NoGradGuard no_grad;
  const bool was_training = net->is_training();
  net->eval();
  const int n = std::min(set.size(), max_images);
  const int stride = std::max(1, set.size() / std::max(1, n));
  double rec_sum = 0, shift_sum = 0;
  int rec_n = 0, shift_n = 0;
  for (int start = 0; start < n; start += 32) {
    std::vector<int> positions;
    for (int i = start; i < std::min(n, start + 32); ++i) positions.push_back(i * stride);
    auto b = set.at(positions);
    auto structure = net->structure(b.stickmen);
    LatentGaussian q = net->posterior(b.images, b.stickmen);
    torch::Tensor rec = net->decode(q.mu, structure);
    Shifted s = shift_with_partners(net, q, structure, b.labels, 0.5, false);
    for (size_t i = 0; i < positions.size(); ++i) {
      cv::Mat orig = output_image(b.images[i], g, g.height, g.width);
      rec_sum += quality::ssim(orig, output_image(rec[i], g, g.height, g.width));
      ++rec_n;
    }
    if (s.rows.defined()) {
      auto r = s.rows.accessor<std::int64_t, 1>();
      for (std::int64_t j = 0; j < r.size(0); ++j) {
        shift_sum += quality::ssim(output_image(b.images[r[j]], g, g.height, g.width),
                                   output_image(s.image[j], g, g.height, g.width));
        ++shift_n;
      }
    }
  }
  if (was_training) net->train();
  return {{"reconstruction_ssim", rec_n ? rec_sum / rec_n : 0.0},
          {"shift_ssim_to_original", shift_n ? shift_sum / shift_n : 0.0},
          {"images", rec_n}};
}

nlohmann::json PisTrainSummary::to_json() const {
  return {{"steps_run", steps_run},   {"last_step", last_step}, {"finished", finished},
          {"seconds", seconds},
          {"images_per_second", images_per_second}, {"images", images}, {"skipped", skipped},
          {"metrics", metrics}};
}

PisTrainSummary train_pis(const PisConfig& config_in, const data::Dataset& dataset,
                          const PisTrainRunOptions& options) {
  PisConfig config = config_in;
  if (options.feature_model) {
    config.features.network = "reid";
    config.features.reid_model = *options.feature_model;
  }
  const Profile& profile = config.profile;
  tensor::configure_torch_threads(profile.runtime.threads);
  Geometry g{profile.transform.height, profile.transform.width, config.input_width()};
  const fs::path ckpt_dir = options.out / "checkpoint";
  if (!options.resume && fs::exists(ckpt_dir))
    throw Error("'" + options.out.string() +
                "' already holds a PIS run; add --resume to continue it or choose a new --out");
  fs::create_directories(options.out);

  PisTrainingSet set(dataset, g);
  if (!set.skipped().empty())
    spdlog::warn("{} of {} training images have no usable pose (no shoulder or no hip visible) and "
                 "are not used, e.g. {}",
                 set.skipped().size(), dataset.train.size(), set.skipped().front());
  auto features = config.features.alpha_rec > 0 ? make_feature_network(config.features) : nullptr;

  torch::manual_seed(profile.runtime.seed);
  PisNet net(config.network, set.num_ids(), g.height, g.input_width);
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(config.train.lr));

  PisModelInfo info;
  info.network = config.network;
  info.num_ids = set.num_ids();
  info.geometry = g;
  info.stage1_steps = config.train.stage1_steps;
  info.stage2_steps = config.train.stage2_steps;
  info.feature_network = features ? features->name() : "none";
  info.config = profile.source;
  info.seed = profile.runtime.seed;

  int step = 0;
  std::string metrics_lines;
  // The running loss sums of the log window [kl, rec, cycle, app] and its step count: saved with
  // the checkpoint, so a run stopped inside a window logs the same averages once resumed.
  double sums[4] = {0, 0, 0, 0};
  int window = 0;
  if (options.resume) {
    fs::path d = pis_checkpoint_dir(ckpt_dir);
    PisModelInfo saved = read_pis_info(ckpt_dir);
    if (saved.to_json()["network"] != info.to_json()["network"] || saved.num_ids != info.num_ids ||
        saved.geometry.input_width != g.input_width || saved.geometry.height != g.height)
      throw Error("--resume: the checkpoint in '" + ckpt_dir.string() +
                  "' was trained with a different network, image size or dataset; use the same "
                  "config and data");
    if (!fs::exists(d / "training.pt"))
      throw Error("--resume: '" + d.string() + "' has no training.pt (optimizer state)");
    torch::serialize::InputArchive model_archive, archive, opt_archive;
    model_archive.load_from((d / "model.pt").string());
    net->load(model_archive);
    archive.load_from((d / "training.pt").string());
    archive.read("optimizer", opt_archive);
    optimizer.load(opt_archive);
    torch::Tensor saved_window;
    if (archive.try_read("loss_window", saved_window)) {  // absent in older checkpoints
      auto w = saved_window.accessor<double, 1>();
      for (int i = 0; i < 4; ++i) sums[i] = w[i];
      window = static_cast<int>(w[4]);
    }
    step = saved.step;
    info.metrics = saved.metrics;
    // Keep only the lines of steps the checkpoint contains: later ones will be redone.
    if (fs::exists(options.out / "metrics.jsonl")) {
      std::istringstream in(util::read_file(options.out / "metrics.jsonl"));
      for (std::string line; std::getline(in, line);)
        if (!line.empty() && nlohmann::json::parse(line).value("step", 0) <= step)
          metrics_lines += line + "\n";
    }
    spdlog::info("resuming PIS training after step {} from {}", step, ckpt_dir.string());
  }

  const int total_steps = config.train.stage1_steps + config.train.stage2_steps;
  const std::vector<int> grid_at = grid_positions(set);
  PisTrainSummary summary;
  summary.images = set.size();
  summary.skipped = static_cast<int>(set.skipped().size());
  auto save = [&](int done) {
    info.step = done;
    save_pis_checkpoint(ckpt_dir, net, info, [&](const fs::path& file) {
      torch::serialize::OutputArchive archive, opt_archive;
      optimizer.save(opt_archive);
      archive.write("optimizer", opt_archive);
      archive.write("loss_window",
                    torch::tensor({sums[0], sums[1], sums[2], sums[3], double(window)},
                                  torch::kDouble));
      archive.save_to(file.string());
    });
    util::write_file_atomic(options.out / "metrics.jsonl", metrics_lines);
  };
  auto write_grid = [&](int done) {
    net->eval();
    char name[32];
    std::snprintf(name, sizeof name, "step_%07d.png", done);
    write_png(options.out / "grids" / name, grid_image(net, set, g, grid_at));
    net->train();
  };

  const int end_step = options.max_steps > 0 ? std::min(total_steps, step + options.max_steps)
                                            : total_steps;
  util::Progress progress(end_step - step, "pis", "step");
  auto started = std::chrono::steady_clock::now();
  net->train();
  for (; step < end_step; ++step) {
    const int stage = step < config.train.stage1_steps ? 1 : 2;
    for (auto& group : optimizer.param_groups())
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr_at(config.train, step));
    // Batches and noise depend on (seed, step) only, so a resumed run draws what an
    // uninterrupted one would have.
    util::Rng rng(util::Rng::derive(profile.runtime.seed, static_cast<std::uint64_t>(step)));
    torch::manual_seed(util::Rng::derive(profile.runtime.seed ^ 0x5049535FULL, step));
    auto batch = set.sample(config.train.batch_size, rng, config.train.flip_prob);
    PisLossParts parts = pis_losses(net, features.get(), config, batch, stage,
                                    kl_weight_at(config.train, step));
    const double total = parts.total.item<double>();
    if (!std::isfinite(total))
      throw Error("the PIS loss became " + std::to_string(total) + " at step " +
                  std::to_string(step + 1) + "; lower train.lr in " + profile.source +
                  " (the last checkpoint is kept)");
    optimizer.zero_grad();
    parts.total.backward();
    optimizer.step();
    sums[0] += parts.kl, sums[1] += parts.rec, sums[2] += parts.cycle, sums[3] += parts.app;
    ++window;
    ++summary.steps_run;
    progress.set_suffix("stage " + std::to_string(stage) + " kl " + fixed3(parts.kl) + " rec " +
                        fixed3(parts.rec) + (stage == 2 ? " cyc " + fixed3(parts.cycle) + " app " +
                                                              fixed3(parts.app)
                                                        : std::string()));
    progress.tick();
    const int done = step + 1;
    if (done % config.train.log_every == 0 || done == total_steps) {
      nlohmann::json line = {{"step", done},         {"stage", stage},
                             {"lr", lr_at(config.train, step)}, {"kl_weight", parts.kl_weight},
                             {"kl", sums[0] / window}, {"rec", sums[1] / window},
                             {"cycle", sums[2] / window}, {"app", sums[3] / window},
                             {"steps_per_second", progress.rate()}};
      metrics_lines += line.dump() + "\n";
      std::fill(std::begin(sums), std::end(sums), 0.0);
      window = 0;
    }
    if (done == config.train.stage1_steps && config.train.stage2_steps > 0) {
      // Stage 1 is what "reconstruction is good" means before the shift losses start.
      info.metrics["stage1"] = evaluate_reconstruction(net, set, g);
      metrics_lines += nlohmann::json({{"step", done}, {"stage1_eval", info.metrics["stage1"]}}).dump() + "\n";
      spdlog::info("PIS stage 1 done: reconstruction SSIM {:.3f}",
                   info.metrics["stage1"]["reconstruction_ssim"].get<double>());
    }
    if (config.train.grid_every > 0 && done % config.train.grid_every == 0) write_grid(done);
    if (done % config.train.checkpoint_every == 0 && done != total_steps) save(done);
  }
  progress.finish();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  summary.images_per_second =
      summary.seconds > 0 ? summary.steps_run * config.train.batch_size / summary.seconds : 0;
  summary.last_step = step;
  summary.finished = step == total_steps;
  if (!summary.finished) {
    save(step);
    spdlog::info("PIS: stopped after step {} of {}; continue with --resume", step, total_steps);
    return summary;
  }
  if (config.train.grid_every == 0 || step % config.train.grid_every != 0) write_grid(step);
  nlohmann::json stage1 = info.metrics.is_object() && info.metrics.contains("stage1")
                              ? info.metrics["stage1"]
                              : nlohmann::json();
  info.metrics = evaluate_reconstruction(net, set, g);
  if (!stage1.is_null()) info.metrics["stage1"] = stage1;
  summary.metrics = info.metrics;
  save(step);
  util::write_file_atomic(options.out / "summary.json", summary.to_json().dump(2) + "\n");
  spdlog::info("PIS: {} steps, reconstruction SSIM {:.3f}, shifted-to-original SSIM {:.3f}",
               step, info.metrics["reconstruction_ssim"].get<double>(),
               info.metrics["shift_ssim_to_original"].get<double>());
  return summary;
}

}  // namespace ppreid::deid::pis
