#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ppreid::reid {

struct ImportReport {
  int loaded = 0;                     // backbone tensors taken from the file
  std::vector<std::string> skipped;   // entries with no place in the backbone (fc.*)
};

// Reads a torchvision ResNet state_dict (a Python torch.save file, e.g. ImageNet weights) and
// writes a ppreid checkpoint directory whose backbone holds those weights (BNNeck freshly
// initialized, no classifier), for `ppreid train --init`. A "module." prefix (DataParallel) is
// stripped. Throws ppreid::Error listing missing or shape-mismatched backbone tensors, so a
// resnet18 file cannot silently half-load into a resnet50.
ImportReport import_torchvision_resnet(const std::filesystem::path& file, const std::string& arch,
                                       const std::filesystem::path& out_dir);

}  // namespace ppreid::reid
