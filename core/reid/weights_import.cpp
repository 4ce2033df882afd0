#include "core/reid/weights_import.h"

#include <map>

#include "core/reid/checkpoint.h"
#include "core/reid/torch_pickle.h"
#include "core/util/error.h"

namespace ppreid::reid {

ImportReport import_torchvision_resnet(const std::filesystem::path& file, const std::string& arch,
                                       const std::filesystem::path& out_dir) {
  NamedTensors source = read_torch_state_dict(file);
  BackboneOptions backbone;
  backbone.arch = arch;
  ReidModel model(ModelOptions{backbone, 0, true});
  NamedTensors target = model->shared_state();
  std::map<std::string, size_t> slot;
  for (size_t i = 0; i < target.size(); ++i) slot[target[i].first] = i;

  ImportReport report;
  std::vector<bool> filled(target.size(), false);
  std::string mismatched;
  for (auto& [raw_name, tensor] : source) {
    std::string name = raw_name.rfind("module.", 0) == 0 ? raw_name.substr(7) : raw_name;
    auto it = slot.find("backbone." + name);
    if (it == slot.end()) {
      report.skipped.push_back(raw_name);
      continue;
    }
    torch::Tensor& dst = target[it->second].second;
    if (dst.sizes() != tensor.sizes()) {
      mismatched += (mismatched.empty() ? "" : ", ") + name + " " +
                    c10::str(tensor.sizes()) + " vs " + c10::str(dst.sizes());
      continue;
    }
    dst = tensor.to(dst.dtype());
    filled[it->second] = true;
    ++report.loaded;
  }
  std::string missing;
  int missing_count = 0;
  for (size_t i = 0; i < target.size(); ++i)
    if (!filled[i] && target[i].first.rfind("backbone.", 0) == 0) {
      if (++missing_count <= 5) missing += (missing.empty() ? "" : ", ") + target[i].first;
    }
  if (!mismatched.empty() || missing_count > 0)
    throw Error("'" + file.string() + "' does not fit a " + arch + " backbone" +
                (mismatched.empty() ? "" : "; shape mismatch: " + mismatched) +
                (missing_count ? "; missing " + std::to_string(missing_count) + " tensors (" +
                                     missing + (missing_count > 5 ? ", ..." : "") + ")"
                               : "") +
                "; check --arch");
  model->load_shared_state(target);

  CheckpointInfo info;
  info.backbone = backbone;
  info.num_classes = 0;
  info.feature_dim = model->feature_dim();
  info.config = "imported from " + file.filename().string();
  save_checkpoint(out_dir, model, info);
  return report;
}

}  // namespace ppreid::reid
