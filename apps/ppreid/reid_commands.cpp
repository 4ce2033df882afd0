#include "apps/ppreid/commands.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>
#include <memory>

#include "core/data/dataset.h"
#include "core/reid/centroid_protocol.h"
#include "core/reid/checkpoint.h"
#include "core/reid/distance.h"
#include "core/reid/feature_eval.h"
#include "core/reid/features.h"
#include "core/reid/state_dict.h"
#include "core/reid/trainer.h"
#include "core/reid/weights_import.h"
#include "core/util/error.h"
#include "core/tensor/torch_threads.h"

namespace ppreid::reid {
namespace fs = std::filesystem;
namespace {

struct TrainArgs {
  std::string config = "configs/train/small.yaml";
  std::string data, out, init;
  bool resume = false;
  int threads = -1;
  bool json = false;
  dist::LaunchFlags launch;
};

void run_train(const TrainArgs& a) {
  if (!a.init.empty() && a.resume)
    throw UsageError("--init and --resume exclude each other: --resume continues a run");
  dist::LaunchOptions launch = dist::resolve_launch(a.launch);
  dist::resolve_backend(launch.backend, /*model_on_cuda=*/false);  // training runs on the CPU
  TrainConfig config = load_train_config(a.config);
  if (a.threads >= 0) config.profile.runtime.threads = a.threads;
  if (!a.launch.timeout_seconds)
    launch.timeout = std::chrono::milliseconds(
        static_cast<long long>(config.distributed.timeout_seconds * 1000));
  data::Dataset dataset = data::load_dataset(a.data);
  TrainOptions options;
  options.out = a.out;
  options.resume = a.resume;
  if (!a.init.empty()) options.init = a.init;
  std::unique_ptr<dist::Communicator> comm;
  if (launch.distributed()) {
    spdlog::info("rank {} of {}: joining the rendezvous at {} (waiting up to {} s)", launch.rank,
                 launch.world_size, launch.rendezvous(),
                 std::chrono::duration<double>(launch.timeout).count());
    comm = std::make_unique<dist::Communicator>(launch);
    options.comm = comm.get();
  }
  TrainSummary s = train_model(config, dataset, options);
  if (launch.rank > 0) {
    // The run directory is rank 0's; the other ranks only say that they finished.
    if (a.json) std::cout << s.to_json().dump(2) << "\n";
    else
      std::cout << "rank " << launch.rank << " of " << launch.world_size << ": trained "
                << s.epochs_run << " epochs with rank 0 (which wrote the checkpoint)\n";
    return;
  }
  if (a.json) {
    std::cout << s.to_json().dump(2) << "\n";
    return;
  }
  std::cout << "trained " << s.epochs_run << " epochs in " << s.seconds << " s ("
            << s.images_per_second << " images/s"
            << (s.world_size > 1 ? " over " + std::to_string(s.world_size) + " ranks" : "")
            << ")\n";
  if (s.metrics.contains("instance"))
    std::cout << "  instance mAP " << s.metrics["instance"]["mAP"] << ", rank-1 "
              << s.metrics["instance"]["rank1"] << "\n";
  if (s.metrics.contains("centroid"))
    std::cout << "  centroid mAP " << s.metrics["centroid"]["mAP"] << ", rank-1 "
              << s.metrics["centroid"]["rank1"] << "\n";
  std::cout << "  checkpoint: " << (fs::path(a.out) / "checkpoint").string() << "\n";
}

struct EvalArgs {
  std::string model, data, features, metric = "euclidean";
  bool centroids = false;
  std::string centroid_protocol = "reference";
  bool json = false;
  int threads = 0;
  int batch_size = 128;
};

void run_eval(const EvalArgs& a) {
  if (a.features.empty() == a.model.empty())
    throw UsageError("give either --model CKPT --data DIR or --features DIR");
  nlohmann::json result;
  if (!a.features.empty()) {
    if (!a.data.empty()) throw UsageError("--data goes with --model, not with --features");
    result = evaluate_feature_dir(a.features, parse_metric(a.metric), a.centroids,
                                  parse_centroid_protocol(a.centroid_protocol));
  } else {
    if (a.data.empty()) throw UsageError("--model needs --data DIR (the query/gallery to rank)");
    tensor::configure_torch_threads(a.threads);
    CheckpointInfo info;
    ReidModel model = load_checkpoint_model(a.model, &info);
    data::Dataset dataset = data::load_dataset(a.data);
    data::EvalLoaderOptions options;
    options.batch_size = a.batch_size;
    result = evaluate_model(model, dataset, test_transform(info), a.metric, a.centroids, options,
                            nullptr, parse_centroid_protocol(a.centroid_protocol));
  }
  // The headline numbers at the top level: centroid retrieval when asked for, else instance.
  nlohmann::json out = result.contains("centroid") ? result["centroid"] : result["instance"];
  out["retrieval"] = result.contains("centroid") ? "centroid" : "instance";
  // The headline figures depend on the protocol: name it beside them.
  if (result.contains("centroid")) out["centroid_protocol"] = result["centroid"]["protocol"];
  out["instance"] = result["instance"];
  if (result.contains("centroid")) out["centroid"] = result["centroid"];
  if (a.json) {
    std::cout << out.dump(2) << "\n";
    return;
  }
  auto line = [](const char* name, const nlohmann::json& m) {
    std::printf("  %-9s mAP %.4f  rank-1 %.4f  rank-5 %.4f  rank-10 %.4f  mINP %.4f  (%d valid queries)\n",
                name, m["mAP"].get<double>(), m["rank1"].get<double>(), m["rank5"].get<double>(),
                m["rank10"].get<double>(), m["mINP"].get<double>(), m["valid_queries"].get<int>());
  };
  line("instance", result["instance"]);
  if (result.contains("centroid")) {
    line("centroid", result["centroid"]);
    std::printf("  (centroid protocol: %s)\n",
                result["centroid"]["protocol"].get<std::string>().c_str());
  }
}

struct WeightsArgs {
  std::string file, out, arch = "resnet50", model;
};

}  // namespace

void register_reid_commands(CLI::App& app) {
  auto t = std::make_shared<TrainArgs>();
  CLI::App* train = app.add_subcommand("train", "Train the centroid ReID model (BoT + CTL)");
  train->add_option("--config", t->config, "Training config (configs/train/{tiny,small,paper}.yaml)");
  train->add_option("--data", t->data, "Dataset root (Market-1501 layout)")->required();
  train->add_option("--out", t->out, "Run directory (checkpoint/, metrics.jsonl, summary.json)")
      ->required();
  train->add_option("--init", t->init,
                    "Start the backbone from a checkpoint (e.g. from `ppreid weights import`)");
  train->add_flag("--resume", t->resume, "Continue the run in --out from its checkpoint");
  train->add_option("--threads", t->threads, "LibTorch threads (overrides runtime.threads)")
      ->check(CLI::Range(0, 1024));
  train->add_flag("--json", t->json, "Print the summary as JSON");
  dist::add_launch_flags(*train, t->launch);
  train->callback([t] { run_train(*t); });

  auto e = std::make_shared<EvalArgs>();
  CLI::App* eval = app.add_subcommand(
      "eval", "Market-protocol retrieval metrics of a model or of feature files");
  eval->add_option("--model", e->model, "Checkpoint directory written by `ppreid train`");
  eval->add_option("--data", e->data, "Dataset with query/ and bounding_box_test/");
  eval->add_option("--features", e->features,
                   "Directory with query.csv and gallery.csv (pid,camid,f_1,...,f_d)");
  CLI::Option* centroids = eval->add_flag(
      "--centroids", e->centroids,
      "Centroid retrieval (per identity and query camera) besides instance retrieval");
  eval->add_option("--centroid-protocol", e->centroid_protocol,
                   "With --centroids: reference (centroids-reid, comparable with the papers; "
                   "default), strict (distractors and gallery-only identities stay, the query "
                   "camera's images of everyone are removed) or all-cameras (optimistic)")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(kCentroidProtocolNames),
                                                     std::end(kCentroidProtocolNames))))
      ->needs(centroids);
  eval->add_option("--metric", e->metric, "euclidean or cosine")
      ->check(CLI::IsMember({"euclidean", "cosine"}));
  eval->add_option("--threads", e->threads, "LibTorch threads (0 = all cores)")
      ->check(CLI::Range(0, 1024));
  eval->add_option("--batch-size", e->batch_size, "Feature extraction batch size")
      ->check(CLI::Range(1, 4096));
  eval->add_flag("--json", e->json, "Print JSON");
  eval->callback([e] { run_eval(*e); });

  CLI::App* weights = app.add_subcommand("weights", "Move weights between ppreid and PyTorch");
  weights->require_subcommand(1);
  auto wi = std::make_shared<WeightsArgs>();
  CLI::App* imp = weights->add_subcommand(
      "import", "Map a torchvision ResNet state_dict (torch.save file) onto a ppreid backbone");
  imp->add_option("file", wi->file, "The .pt/.pth file")->required();
  imp->add_option("--arch", wi->arch, "resnet50 or resnet18")
      ->check(CLI::IsMember({"resnet50", "resnet18"}));
  imp->add_option("--out", wi->out, "Checkpoint directory to write (use with train --init)")
      ->required();
  imp->callback([wi] {
    ImportReport r = import_torchvision_resnet(wi->file, wi->arch, wi->out);
    std::cout << "imported " << r.loaded << " tensors into " << wi->out << " (skipped "
              << r.skipped.size() << ": fc and other non-backbone entries)\n";
  });
  auto we = std::make_shared<WeightsArgs>();
  CLI::App* exp = weights->add_subcommand(
      "export", "Write a checkpoint's model as one state_dict Python can torch.load");
  exp->add_option("--model", we->model, "Checkpoint directory")->required();
  exp->add_option("--out", we->out, "Output .pt file")->required();
  exp->callback([we] {
    ReidModel model = load_checkpoint_model(we->model);
    NamedTensors all = model->shared_state();
    for (auto& entry : model->head_state()) all.push_back(entry);
    save_state_dict(we->out, all);
    std::cout << "wrote " << all.size() << " tensors to " << we->out
              << " (load in Python with torch.load)\n";
  });
}

}  // namespace ppreid::reid
