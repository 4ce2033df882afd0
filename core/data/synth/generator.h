#pragma once

#include <filesystem>

#include "core/data/synth/synth_options.h"

namespace ppreid::data::synth {

// Throws ppreid::UsageError naming the offending option (as its command-line flag) when the
// options cannot produce a valid Market-1501-style dataset.
void validate(const SynthOptions& options);

// Writes the whole dataset to `out_dir`: bounding_box_train/, query/, bounding_box_test/,
// keypoints.csv, attributes.csv, municipalities.csv and synth.json. The dataset is built in a
// hidden sibling directory and renamed into place at the end, so `out_dir` is either absent, the
// previous content, or the complete new dataset. An existing non-empty `out_dir` is an error
// unless `overwrite` is true. The output is byte-identical for the same options whatever
// `options.threads` is. SynthSummary::gallery_images counts the identities' gallery images:
// bounding_box_test also holds options.distractors pid-0 and options.junk pid -1 files.
SynthSummary generate(const SynthOptions& options, const std::filesystem::path& out_dir,
                      bool overwrite = false);

}  // namespace ppreid::data::synth
