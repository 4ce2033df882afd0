#include "core/deid/pis/shift_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numeric>
#include <set>
#include <sstream>

#include "core/data/stickman.h"
#include "core/util/error.h"
#include "core/util/random_source.h"

namespace ppreid::deid::pis {
namespace {

constexpr int kMaxLabel = 9999;  // file names carry 4-digit pids
constexpr double kSumTolerance = 1e-9;
// Independent DRBG streams, so the labels do not depend on how many partner draws came first.
constexpr std::uint64_t kPartnerStream = 0x5049530000000001ULL;
constexpr std::uint64_t kLabelStream = 0x5049530000000002ULL;

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Uniform in [0, n) without modulo bias.
std::size_t uniform_below(util::RandomSource& rng, std::size_t n) {
  if (n == 0 || n > 0xFFFFFFFFull) throw Error("uniform_below: range " + std::to_string(n));
  const std::uint64_t range = n;
  const std::uint64_t limit = (std::uint64_t{1} << 32) - ((std::uint64_t{1} << 32) % range);
  for (;;) {
    std::uint64_t x = rng.next_u32();
    if (x < limit) return static_cast<std::size_t>(x % range);
  }
}

// Moves `count` uniformly chosen elements to the front of `items` (a partial Fisher-Yates).
template <typename T>
void choose_front(std::vector<T>& items, std::size_t count, util::RandomSource& rng) {
  for (std::size_t i = 0; i < count; ++i)
    std::swap(items[i], items[i + uniform_below(rng, items.size() - i)]);
}

struct AttributeField {
  const char* name;
  std::function<std::string(const data::Attributes&)> value;
};

const std::vector<AttributeField>& attribute_fields() {
  static const std::vector<AttributeField> fields = {
      {"gender", [](const data::Attributes& a) { return std::to_string(a.gender); }},
      {"hair_length", [](const data::Attributes& a) { return std::to_string(a.hair_length); }},
      {"age_group", [](const data::Attributes& a) { return std::to_string(a.age_group); }},
      {"hat", [](const data::Attributes& a) { return std::to_string(a.hat); }},
      {"backpack", [](const data::Attributes& a) { return std::to_string(a.backpack); }},
      {"bag", [](const data::Attributes& a) { return std::to_string(a.bag); }},
      {"sleeve_length", [](const data::Attributes& a) { return std::to_string(a.sleeve_length); }},
      {"lower_length", [](const data::Attributes& a) { return std::to_string(a.lower_length); }},
      {"upper_color", [](const data::Attributes& a) { return a.upper_color; }},
      {"lower_color", [](const data::Attributes& a) { return a.lower_color; }},
  };
  return fields;
}

const AttributeField& attribute_field(const std::string& name) {
  std::string names;
  for (const auto& f : attribute_fields()) {
    if (name == f.name) return f;
    names += (names.empty() ? "" : ", ") + std::string(f.name);
  }
  throw UsageError("--opposite-attribute '" + name +
                   "' is not an attribute of attributes.csv; use one of " + names);
}

// An identity of the partner dataset that can lend an image.
struct Candidate {
  int pid = 0;
  bool in_train = false;  // its images below come from the train split
  std::vector<const data::ImageRecord*> images;
};

std::vector<Candidate> partner_candidates(const data::Dataset& ds) {
  if (ds.keypoints.empty())
    throw Error("PIS needs pose keypoints for its partner images, but dataset '" +
                ds.root.string() +
                "' has no keypoints.csv; add one (18 joints per image, see the README) or use a "
                "dataset made by `ppreid synth`");
  std::map<int, Candidate> by_pid;
  std::map<int, std::vector<const data::ImageRecord*>> elsewhere;
  for (auto kind : {data::SplitKind::kTrain, data::SplitKind::kQuery, data::SplitKind::kGallery}) {
    for (const auto& r : ds.split(kind)) {
      const data::Pose* pose = ds.pose(r);
      if (r.pid <= 0 || !pose || !data::usable_for_pose_conditioning(*pose)) continue;
      if (kind == data::SplitKind::kTrain) {
        Candidate& c = by_pid[r.pid];
        c.pid = r.pid;
        c.in_train = true;
        c.images.push_back(&r);
      } else {
        elsewhere[r.pid].push_back(&r);
      }
    }
  }
  for (auto& [pid, images] : elsewhere)
    if (!by_pid.count(pid)) by_pid[pid] = Candidate{pid, false, std::move(images)};
  if (by_pid.empty())
    throw Error("no image of dataset '" + ds.root.string() +
                "' has usable pose keypoints (both shoulders and both hips visible), so PIS has no "
                "partner image; check keypoints.csv");
  std::vector<Candidate> out;
  for (auto& [pid, c] : by_pid) out.push_back(std::move(c));
  return out;
}

void require_attributes(const data::Dataset& ds, const std::string& attribute) {
  if (ds.attributes.empty())
    throw Error("--opposite-attribute " + attribute + " needs attributes.csv, but dataset '" +
                ds.root.string() + "' has none; add it or drop --opposite-attribute");
}

class PartnerPicker {
 public:
  PartnerPicker(const data::Dataset& targets, const data::Dataset& partners, bool cross,
                const PartnerOptions& options)
      : targets_(targets),
        partners_(partners),
        cross_(cross),
        options_(options),
        candidates_(partner_candidates(partners)),
        rng_(util::make_random_source(options.seed, kPartnerStream)) {
    if (!options.opposite_attribute.empty()) {
      attribute_ = &attribute_field(options.opposite_attribute);
      require_attributes(targets, options.opposite_attribute);
      require_attributes(partners, options.opposite_attribute);
    }
  }

  // pid 0: a distractor, any identity qualifies.
  std::vector<PartnerImage> pick(int target_pid) {
    const std::size_t need = static_cast<std::size_t>(options_.k - 1);
    std::optional<std::string> own_value;
    if (attribute_ && target_pid > 0) {
      auto it = targets_.attributes.find(target_pid);
      if (it == targets_.attributes.end())
        throw Error("identity " + std::to_string(target_pid) + " has no row in '" +
                    (targets_.root / "attributes.csv").string() + "'; --opposite-attribute " +
                    options_.opposite_attribute + " needs one for every identity");
      own_value = attribute_->value(it->second);
    }
    std::vector<const Candidate*> train_pool, all_pool;
    for (const auto& c : candidates_) {
      if (!cross_ && c.pid == target_pid) continue;
      if (own_value) {
        auto it = partners_.attributes.find(c.pid);
        if (it == partners_.attributes.end() || attribute_->value(it->second) == *own_value)
          continue;
      }
      all_pool.push_back(&c);
      if (c.in_train) train_pool.push_back(&c);
    }
    std::vector<const Candidate*>& pool = train_pool.size() >= need ? train_pool : all_pool;
    if (pool.size() < need) throw no_partner(target_pid, own_value, all_pool.size());
    choose_front(pool, need, *rng_);
    std::vector<PartnerImage> chosen;
    for (std::size_t i = 0; i < need; ++i) {
      const Candidate& c = *pool[i];
      const data::ImageRecord* image = c.images[uniform_below(*rng_, c.images.size())];
      chosen.push_back({image->path, c.pid});
    }
    return chosen;
  }

 private:
  Error no_partner(int target_pid, const std::optional<std::string>& own_value,
                   std::size_t found) const {
    std::string who = target_pid > 0 ? "identity " + std::to_string(target_pid)
                                     : std::string("the distractor images");
    std::string msg = "PIS: no eligible partner for " + who + " of dataset '" +
                      targets_.root.string() + "': " + std::to_string(found) + " identities of '" +
                      partners_.root.string() + "' qualify";
    if (own_value)
      msg += " (usable pose keypoints and " + options_.opposite_attribute + " different from " +
             *own_value + ")";
    else
      msg += cross_ ? " (usable pose keypoints)" : " (other identities with usable pose keypoints)";
    msg += ", but --k " + std::to_string(options_.k) + " needs " + std::to_string(options_.k - 1) +
           "; ";
    if (own_value) msg += "drop --opposite-attribute or ";
    if (options_.k > 2) msg += "lower --k or ";
    msg += "take partners from a dataset with more identities";
    return Error(msg);
  }

  const data::Dataset& targets_;
  const data::Dataset& partners_;
  bool cross_;
  PartnerOptions options_;
  std::vector<Candidate> candidates_;
  const AttributeField* attribute_ = nullptr;
  std::unique_ptr<util::RandomSource> rng_;
};

std::set<int> pids_of(const data::Dataset& ds) {
  std::set<int> pids;
  for (const auto* split : {&ds.train, &ds.query, &ds.gallery})
    for (const auto& r : *split) pids.insert(r.pid);
  return pids;
}

// ---- JSON ----------------------------------------------------------------------------------

[[noreturn]] void bad_field(const std::string& field, const std::string& rule) {
  throw Error("PIS shift plan: field '" + field + "' " + rule);
}

const nlohmann::json& field(const nlohmann::json& obj, const std::string& where,
                            const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end()) bad_field(where.empty() ? key : where + "." + key, "is missing");
  return *it;
}

void expect_keys(const nlohmann::json& obj, const std::string& where,
                 std::initializer_list<const char*> keys) {
  if (!obj.is_object()) bad_field(where.empty() ? "(top level)" : where, "must be an object");
  for (const auto& [key, value] : obj.items()) {
    if (std::none_of(keys.begin(), keys.end(), [&](const char* k) { return key == k; }))
      bad_field(where.empty() ? key : where + "." + key, "is not a field of a shift plan");
  }
  for (const char* k : keys) field(obj, where, k);
}

int int_field(const nlohmann::json& obj, const std::string& where, const char* key, int lo,
              int hi) {
  const auto& v = field(obj, where, key);
  std::string name = where + "." + key;
  if (!v.is_number_integer()) bad_field(name, "must be an integer");
  auto x = v.get<std::int64_t>();
  if (x < lo || x > hi)
    bad_field(name, "must be in " + std::to_string(lo) + ".." + std::to_string(hi) + " (got " +
                        std::to_string(x) + ")");
  return static_cast<int>(x);
}

std::string string_field(const nlohmann::json& obj, const std::string& where, const char* key) {
  const auto& v = field(obj, where, key);
  if (!v.is_string() || v.get<std::string>().empty())
    bad_field(where + "." + key, "must be a non-empty string");
  return v.get<std::string>();
}

nlohmann::json partners_to_json(const std::vector<PartnerImage>& partners) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : partners) out.push_back({{"path", p.path}, {"pid", p.pid}});
  return out;
}

std::vector<PartnerImage> partners_from_json(const nlohmann::json& obj, const std::string& where,
                                             std::size_t count) {
  const auto& list = field(obj, where, "partners");
  std::string name = where + ".partners";
  if (!list.is_array()) bad_field(name, "must be an array");
  if (list.size() != count)
    bad_field(name, "has " + std::to_string(list.size()) + " entries but the " +
                        "lambdas call for " + std::to_string(count));
  std::vector<PartnerImage> out;
  std::set<int> seen;
  for (std::size_t i = 0; i < list.size(); ++i) {
    std::string at = name + "[" + std::to_string(i) + "]";
    expect_keys(list[i], at, {"path", "pid"});
    PartnerImage p{string_field(list[i], at, "path"), int_field(list[i], at, "pid", 1, 99999)};
    if (!seen.insert(p.pid).second) bad_field(at + ".pid", "repeats another partner's identity");
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

std::vector<double> make_lambdas(int k, double lambda1) {
  if (k < 2)
    throw UsageError("--k " + std::to_string(k) +
                     ": PIS mixes the target with at least one partner, so k must be >= 2");
  std::vector<double> lambdas(static_cast<std::size_t>(k), (1.0 - lambda1) / (k - 1));
  lambdas[0] = lambda1;
  return lambdas;
}

void validate_lambdas(const std::vector<double>& lambdas, double d) {
  if (!(d > 0.0 && d <= 1.0)) throw UsageError("--max-weight " + num(d) + " must be in (0, 1]");
  const std::size_t k = lambdas.size();
  if (k < 2)
    throw UsageError("PIS needs k >= 2 weights (the target and at least one partner); got " +
                     std::to_string(k));
  if (d * static_cast<double>(k) < 1.0 - kSumTolerance)
    throw UsageError("--max-weight " + num(d) + " cannot be met by k = " + std::to_string(k) +
                     " weights that sum to 1 (one of them is at least 1/k = " +
                     num(1.0 / static_cast<double>(k)) + "); raise --max-weight or --k");
  for (std::size_t i = 0; i < k; ++i) {
    const double l = lambdas[i];
    const std::string what = i == 0 ? "--lambda " + num(l) + " gives the target weight " + num(l)
                                    : "--lambda " + num(lambdas[0]) +
                                          " with k = " + std::to_string(k) + " gives partner " +
                                          std::to_string(i) + " the weight " + num(l);
    if (!(l > 0.0))
      throw UsageError(what + " <= 0: every image must contribute; use --lambda in (0, 1) with " +
                       "enough weight left for the partners");
    if (l > d + kSumTolerance)
      throw UsageError(what + " > d = " + num(d) +
                       ": a weight above d reveals that image's identity; use " +
                       (i == 0 ? "--lambda <= " + num(d) : "a larger --lambda or --k") +
                       " or raise --max-weight");
  }
  double sum = std::accumulate(lambdas.begin(), lambdas.end(), 0.0);
  if (std::abs(sum - 1.0) > kSumTolerance)
    throw UsageError("the PIS weights sum to " + num(sum) + ", not 1: the mix must be a convex " +
                     "combination of the latent codes");
}

const IdentityShift& ShiftPlan::for_image(const data::ImageRecord& r) const {
  if (r.pid == 0) {
    auto it = distractors.find(r.path);
    if (it != distractors.end()) return it->second;
  } else {
    auto it = by_pid.find(r.pid);
    if (it != by_pid.end()) return it->second;
  }
  throw Error("the PIS shift plan has no entry for '" + r.path +
              "'; the plan was made for another dataset");
}

ShiftPlan plan_identity_shift(const data::Dataset& targets, const data::Dataset* partners,
                              const PartnerOptions& options, const std::vector<double>& lambdas) {
  if (options.k < 2) throw UsageError("--k " + std::to_string(options.k) + " must be >= 2");
  if (lambdas.size() != static_cast<std::size_t>(options.k))
    throw UsageError("--k " + std::to_string(options.k) + " needs " + std::to_string(options.k) +
                     " weights, got " + std::to_string(lambdas.size()));
  const bool cross = partners != nullptr;
  const data::Dataset& source = cross ? *partners : targets;

  ShiftPlan plan;
  plan.lambdas = lambdas;
  plan.cross_dataset = cross;
  PartnerPicker picker(targets, source, cross, options);

  // Identities in pid order and distractors in path order: deterministic for a seed.
  std::set<int> target_pids = pids_of(targets);
  std::set<std::string> distractor_paths;
  for (const auto* split : {&targets.train, &targets.query, &targets.gallery})
    for (const auto& r : *split)
      if (r.pid == 0) distractor_paths.insert(r.path);
  for (int pid : target_pids) {
    if (pid <= 0) continue;
    plan.by_pid[pid] = IdentityShift{pid, 0, picker.pick(pid)};
  }
  for (const auto& path : distractor_paths)
    plan.distractors[path] = IdentityShift{0, 0, picker.pick(0)};

  std::set<int> taken = target_pids;
  if (cross) taken.merge(pids_of(*partners));
  std::vector<int> unused;
  for (int label = 1; label <= kMaxLabel; ++label)
    if (!taken.count(label)) unused.push_back(label);
  if (unused.size() < plan.by_pid.size())
    throw Error("PIS: dataset '" + targets.root.string() + "' has " +
                std::to_string(plan.by_pid.size()) + " identities but only " +
                std::to_string(unused.size()) + " of the labels 1.." + std::to_string(kMaxLabel) +
                " are unused by the target" + (cross ? " and partner datasets" : " dataset") +
                "; every shifted identity needs a fresh label: de-identify a subset of the "
                "identities at a time");
  auto label_rng = util::make_random_source(options.seed, kLabelStream);
  choose_front(unused, plan.by_pid.size(), *label_rng);
  std::size_t next = 0;
  for (auto& [pid, shift] : plan.by_pid) shift.new_pid = unused[next++];
  return plan;
}

std::string shifted_path(const std::string& relative_path, data::Layout layout, int new_pid) {
  if (new_pid < 0 || new_pid > kMaxLabel)
    throw Error("new label " + std::to_string(new_pid) + " for '" + relative_path +
                "' is outside 0.." + std::to_string(kMaxLabel));
  const std::size_t slash = relative_path.rfind('/');
  const std::size_t start = slash == std::string::npos ? 0 : slash + 1;
  const std::string name = relative_path.substr(start);
  if (!data::parse_image_name(layout, name))
    throw Error("cannot rename '" + relative_path + "': the file name does not follow the " +
                data::layout_name(layout) + " layout");
  char pid[8];
  std::snprintf(pid, sizeof pid, "%04d", new_pid);
  return relative_path.substr(0, start) + pid + name.substr(name.find('_'));
}

nlohmann::json plan_to_json(const ShiftPlan& plan) {
  nlohmann::json identities = nlohmann::json::array();
  for (const auto& [pid, s] : plan.by_pid)
    identities.push_back({{"original_pid", s.original_pid},
                          {"new_pid", s.new_pid},
                          {"partners", partners_to_json(s.partners)}});
  nlohmann::json distractors = nlohmann::json::array();
  for (const auto& [path, s] : plan.distractors)
    distractors.push_back({{"image", path}, {"partners", partners_to_json(s.partners)}});
  return {{"format", "ppreid-pis-shift-plan"}, {"version", 1},
          {"lambdas", plan.lambdas},           {"cross_dataset", plan.cross_dataset},
          {"identities", identities},          {"distractors", distractors}};
}

ShiftPlan plan_from_json(const nlohmann::json& json) {
  expect_keys(json, "",
              {"format", "version", "lambdas", "cross_dataset", "identities", "distractors"});
  if (json["format"] != "ppreid-pis-shift-plan")
    bad_field("format", "must be \"ppreid-pis-shift-plan\"");
  if (json["version"] != 1) bad_field("version", "must be 1 (written by a newer ppreid?)");
  ShiftPlan plan;
  const auto& lambdas = json["lambdas"];
  if (!lambdas.is_array()) bad_field("lambdas", "must be an array of numbers");
  for (const auto& l : lambdas) {
    if (!l.is_number()) bad_field("lambdas", "must be an array of numbers");
    plan.lambdas.push_back(l.get<double>());
  }
  try {
    validate_lambdas(plan.lambdas, 1.0);
  } catch (const UsageError& e) {
    bad_field("lambdas", std::string("is invalid: ") + e.what());
  }
  if (!json["cross_dataset"].is_boolean()) bad_field("cross_dataset", "must be true or false");
  plan.cross_dataset = json["cross_dataset"].get<bool>();
  const std::size_t partners = plan.lambdas.size() - 1;

  const auto& identities = json["identities"];
  if (!identities.is_array()) bad_field("identities", "must be an array");
  std::set<int> new_pids;
  for (std::size_t i = 0; i < identities.size(); ++i) {
    std::string at = "identities[" + std::to_string(i) + "]";
    expect_keys(identities[i], at, {"original_pid", "new_pid", "partners"});
    IdentityShift s;
    s.original_pid = int_field(identities[i], at, "original_pid", 1, 99999);
    s.new_pid = int_field(identities[i], at, "new_pid", 1, kMaxLabel);
    s.partners = partners_from_json(identities[i], at, partners);
    if (!plan.cross_dataset)
      for (const auto& p : s.partners)
        if (p.pid == s.original_pid) bad_field(at + ".partners", "contains the identity itself");
    if (!new_pids.insert(s.new_pid).second) bad_field(at + ".new_pid", "repeats another label");
    if (!plan.by_pid.emplace(s.original_pid, s).second)
      bad_field(at + ".original_pid", "repeats another identity");
  }
  const auto& distractors = json["distractors"];
  if (!distractors.is_array()) bad_field("distractors", "must be an array");
  for (std::size_t i = 0; i < distractors.size(); ++i) {
    std::string at = "distractors[" + std::to_string(i) + "]";
    expect_keys(distractors[i], at, {"image", "partners"});
    IdentityShift s{0, 0, partners_from_json(distractors[i], at, partners)};
    if (!plan.distractors.emplace(string_field(distractors[i], at, "image"), s).second)
      bad_field(at + ".image", "repeats another image");
  }
  return plan;
}

}  // namespace ppreid::deid::pis
