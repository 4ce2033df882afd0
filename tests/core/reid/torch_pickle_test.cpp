#include "core/reid/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/util/error.h"
#include "tests/support/errors.h"
#include "tests/support/temp_dir.h"

namespace ppreid::reid {
namespace {

namespace fs = std::filesystem;

// Fixtures written by tests/data/torch_pickle/make_fixtures.py (Python torch 1.13).
const fs::path kFixtures = fs::path(PPREID_SOURCE_DIR) / "tests/data/torch_pickle";

const nlohmann::json& expected(const std::string& fixture) {
  static const nlohmann::json all = [] {
    std::ifstream in(kFixtures / "expected.json");
    return nlohmann::json::parse(in);
  }();
  return all.at(fixture);
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Compares keys (in order), shapes, dtypes, sums and, for small tensors, every value with what
// Python wrote into expected.json.
void expect_matches_python(const NamedTensors& got, const std::string& fixture) {
  const nlohmann::json& want = expected(fixture);
  ASSERT_EQ(got.size(), want.size()) << fixture;
  for (size_t i = 0; i < got.size(); ++i) {
    const auto& [key, tensor] = got[i];
    const nlohmann::json& w = want[i];
    SCOPED_TRACE(fixture + " " + key);
    EXPECT_EQ(key, w.at("key").get<std::string>());
    EXPECT_EQ(tensor.sizes().vec(), w.at("shape").get<std::vector<int64_t>>());
    EXPECT_EQ(std::string(c10::toString(tensor.scalar_type())), w.at("dtype").get<std::string>());
    EXPECT_TRUE(tensor.is_contiguous());
    EXPECT_FALSE(tensor.requires_grad());
    const double sum = tensor.to(torch::kDouble).sum().item<double>();
    const double want_sum = w.at("sum").get<double>();
    EXPECT_NEAR(sum, want_sum, 1e-9 * std::max(1.0, std::abs(want_sum)));
    if (w.contains("values")) {
      torch::Tensor flat = tensor.to(torch::kDouble).flatten().contiguous();
      std::vector<double> values(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
      EXPECT_EQ(values, w.at("values").get<std::vector<double>>());
    }
  }
}

const torch::Tensor& find(const NamedTensors& tensors, const std::string& key) {
  for (const auto& [name, tensor] : tensors)
    if (name == key) return tensor;
  throw std::runtime_error("no tensor " + key);
}

using testing::expect_error_containing_all;

// Reading must either succeed or throw ppreid::Error: anything else (another exception type, a
// crash under the sanitizers) is a bug.
void expect_success_or_error(const fs::path& file) {
  try {
    read_torch_state_dict(file);
  } catch (const Error&) {
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-ppreid exception: " << e.what();
  }
}

TEST(TorchPickle, ReadsModelStateDictOrderedDict) {
  // model.state_dict(): OrderedDict + _metadata, what torch::pickle_load returns None for.
  const NamedTensors got = read_torch_state_dict(kFixtures / "resnet_like.pt");
  expect_matches_python(got, "resnet_like.pt");
  EXPECT_EQ(got.front().first, "conv1.weight");
  EXPECT_EQ(got.back().first, "fc.bias");
  const torch::Tensor& tracked = find(got, "layer1.0.downsample.1.num_batches_tracked");
  EXPECT_EQ(tracked.dim(), 0);
  EXPECT_EQ(tracked.scalar_type(), torch::kLong);
  EXPECT_EQ(tracked.item<int64_t>(), 3);
}

TEST(TorchPickle, ReadsLinearStateDictValues) {
  // torch.save(torch.nn.Linear(3, 2).state_dict(), p): the values feed a LibTorch Linear.
  const NamedTensors got = read_torch_state_dict(kFixtures / "linear.pt");
  expect_matches_python(got, "linear.pt");
  torch::nn::Linear linear(3, 2);
  torch::NoGradGuard no_grad;
  linear->weight.copy_(find(got, "weight"));
  linear->bias.copy_(find(got, "bias"));
  const torch::Tensor x = torch::tensor({1.0f, -2.0f, 0.5f});
  const torch::Tensor manual = torch::mv(find(got, "weight"), x) + find(got, "bias");
  EXPECT_TRUE(torch::allclose(linear(x), manual));
}

TEST(TorchPickle, ReadsPlainDictWithParameterAndScalar) {
  const NamedTensors got = read_torch_state_dict(kFixtures / "plain_dict.pt");
  expect_matches_python(got, "plain_dict.pt");
  EXPECT_EQ(find(got, "step").dim(), 0);
}

TEST(TorchPickle, UnwrapsStateDictEntryOfCheckpoint) {
  // {"epoch", "state_dict", floats, lists, strings, None, a 2**40 int, optimizer state}.
  expect_matches_python(read_torch_state_dict(kFixtures / "wrapped_state_dict.pt"),
                        "wrapped_state_dict.pt");
}

TEST(TorchPickle, UnwrapsModelEntryOfCheckpoint) {
  expect_matches_python(read_torch_state_dict(kFixtures / "wrapped_model.pt"), "wrapped_model.pt");
}

TEST(TorchPickle, ViewsOfOneStorageKeepOffsetAndStrides) {
  // {'a': t, 'b': t[1:, ::2], 'c': t.t()} with t = arange(24).reshape(4, 6): one storage.
  const NamedTensors got = read_torch_state_dict(kFixtures / "shared_storage.pt");
  expect_matches_python(got, "shared_storage.pt");
  const torch::Tensor t = torch::arange(24.0, torch::kFloat).reshape({4, 6});
  EXPECT_TRUE(torch::equal(find(got, "a"), t));
  EXPECT_TRUE(torch::equal(find(got, "b"), t.slice(0, 1).slice(1, 0, 6, 2)));
  EXPECT_TRUE(torch::equal(find(got, "c"), t.t()));
  // Each tensor owns its memory: writing one leaves the others alone.
  find(got, "a").zero_();
  EXPECT_EQ(find(got, "b").sum().item<float>(),
            t.slice(0, 1).slice(1, 0, 6, 2).sum().item<float>());
}

TEST(TorchPickle, ReadsEveryStorageDtype) {
  expect_matches_python(read_torch_state_dict(kFixtures / "dtypes.pt"), "dtypes.pt");
}

TEST(TorchPickle, ReadsPickleProtocol4) {
  // FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE.
  expect_matches_python(read_torch_state_dict(kFixtures / "protocol4.pt"), "protocol4.pt");
}

TEST(TorchPickle, ReadsLibTorchPickleSave) {
  // ppreid's own state_dict files come from torch::pickle_save.
  testing::TempDir dir;
  c10::Dict<std::string, at::Tensor> dict;
  dict.insert("x", torch::arange(6, torch::kLong).reshape({2, 3}));
  dict.insert("y", torch::tensor(2.5));
  const std::vector<char> bytes = torch::pickle_save(dict);
  write_bytes(dir / "own.pt", std::string(bytes.begin(), bytes.end()));
  const NamedTensors got = read_torch_state_dict(dir / "own.pt");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].first, "x");
  EXPECT_TRUE(torch::equal(got[0].second, dict.at("x")));
  EXPECT_EQ(got[1].second.dim(), 0);
  EXPECT_EQ(got[1].second.item<float>(), 2.5f);
}

TEST(TorchPickle, RefusesLegacyFormatWithAdvice) {
  expect_error_containing_all([] { read_torch_state_dict(kFixtures / "legacy.pt"); },
                          {"legacy.pt", "legacy",
                           "re-save it with torch.save(obj, path) from "
                           "torch >= 1.6"});
}

TEST(TorchPickle, NamesTheKeyOfANonTensorValue) {
  expect_error_containing_all([] { read_torch_state_dict(kFixtures / "non_tensor.pt"); },
                          {"non_tensor.pt", "'epoch'", "an int, not a tensor"});
}

TEST(TorchPickle, MissingFileIsNamed) {
  expect_error_containing_all([] { read_torch_state_dict(kFixtures / "nope.pt"); },
                          {"nope.pt", "does not exist"});
}

TEST(TorchPickle, FileThatIsNotAZip) {
  testing::TempDir dir;
  write_bytes(dir / "text.pt", "this is not a checkpoint\n");
  expect_error_containing_all([&] { read_torch_state_dict(dir / "text.pt"); },
                          {"text.pt", "not a torch.save file"});
  write_bytes(dir / "empty.pt", "");
  expect_error_containing_all([&] { read_torch_state_dict(dir / "empty.pt"); }, {"empty.pt"});
}

TEST(TorchPickle, TruncatedCopiesGiveErrors) {
  testing::TempDir dir;
  const std::string full = read_bytes(kFixtures / "resnet_like.pt");
  for (size_t n : {size_t{2}, size_t{4}, size_t{100}, full.size() / 2, full.size() - 23,
                   full.size() - 22, full.size() - 1}) {
    SCOPED_TRACE(n);
    write_bytes(dir / "cut.pt", full.substr(0, n));
    expect_error_containing_all([&] { read_torch_state_dict(dir / "cut.pt"); }, {"cut.pt"});
  }
}

TEST(TorchPickle, CorruptedBytesGiveErrorsNotCrashes) {
  testing::TempDir dir;
  const std::string full = read_bytes(kFixtures / "resnet_like.pt");
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> at(0, full.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 150; ++round) {
    std::string bad = full;
    for (int k = 0; k < 1 + round % 4; ++k) bad[at(rng)] = static_cast<char>(byte(rng));
    write_bytes(dir / "bad.pt", bad);
    expect_success_or_error(dir / "bad.pt");
  }
}

// ---------------------------------------------------------------------------------------------
// Crafted archives: a hand-written data.pkl plus storage records, zipped by LibTorch's own
// writer so that only the pickle is hostile.

class Pickle {
 public:
  Pickle() { bytes_ = "\x80\x02"; }
  Pickle& op(const std::string& raw) {
    bytes_ += raw;
    return *this;
  }
  Pickle& text(const std::string& s) {  // BINUNICODE
    bytes_ += 'X';
    for (int i = 0; i < 4; ++i) bytes_ += static_cast<char>((s.size() >> (8 * i)) & 0xff);
    bytes_ += s;
    return *this;
  }
  Pickle& integer(int64_t v) {  // LONG1 with 8 bytes
    bytes_ += "\x8a\x08";
    for (int i = 0; i < 8; ++i)
      bytes_ += static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff);
    return *this;
  }
  Pickle& global(const std::string& module, const std::string& name) {
    bytes_ += "c" + module + "\n" + name + "\n";
    return *this;
  }
  Pickle& ints(const std::vector<int64_t>& values) {  // a tuple
    op("(");
    for (int64_t v : values) integer(v);
    return op("t");
  }
  // {'w': _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())} + STOP
  Pickle& one_tensor(const std::string& storage_type, int64_t numel, int64_t offset,
                     const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
    op("}(").text("w").global("torch._utils", "_rebuild_tensor_v2").op("((").text("storage");
    global("torch", storage_type).text("0").text("cpu").integer(numel).op("tQ");
    integer(offset).ints(size).ints(stride).op("\x89").global("collections", "OrderedDict");
    return op(")Rt").op("R").op("u.");
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

fs::path write_archive(const testing::TempDir& dir, const std::string& pickle,
                       const std::map<std::string, std::string>& records = {}) {
  const fs::path path = dir / "crafted.pt";
  caffe2::serialize::PyTorchStreamWriter writer(path.string());
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  for (const auto& [name, data] : records) writer.writeRecord(name, data.data(), data.size());
  writer.writeEndOfFile();
  return path;
}

const std::string kFourFloats(16, '\0');  // data/0 for a FloatStorage of 4 elements

TEST(TorchPickle, CraftedValidTensorReads) {
  testing::TempDir dir;
  // The harness itself must be right for the failures below to mean anything.
  const fs::path p = write_archive(dir, Pickle().one_tensor("FloatStorage", 4, 1, {3}, {1}).bytes(),
                                   {{"data/0", kFourFloats}});
  const NamedTensors got = read_torch_state_dict(p);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].second.sizes().vec(), std::vector<int64_t>{3});
}

TEST(TorchPickle, CraftedGeometryOutsideTheStorageIsRefused) {
  testing::TempDir dir;
  struct Case {
    int64_t numel, offset;
    std::vector<int64_t> size, stride;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {4, 0, {3}, {2}, "past the end"},                    // reaches element 4 of 4
      {4, 2, {2, 2}, {1, 1}, "past the end"},              // offset + reach
      {4, 5, {1}, {1}, "offset out of range"},             // offset beyond the storage
      {4, -1, {1}, {1}, "offset out of range"},            // negative offset
      {4, 0, {-1}, {1}, "negative size"},                  // negative size
      {4, 0, {2}, {-1}, "negative size or stride"},        // negative stride
      {4, 0, {int64_t{1} << 40}, {0}, "expanded view"},    // huge expand of one element
      {4, 0, {int64_t{1} << 62, 8}, {1, 1}, "overflows"},  // numel overflows int64
      {4, 0, {2, int64_t{1} << 62}, {int64_t{1} << 62, 1}, "overflows"},
      {1000, 0, {4}, {1}, "record holds 16 bytes"},  // storage larger than its record
      {-3, 0, {1}, {1}, "record holds 16 bytes"},    // negative numel
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.needle);
    const fs::path p = write_archive(
        dir, Pickle().one_tensor("FloatStorage", c.numel, c.offset, c.size, c.stride).bytes(),
        {{"data/0", kFourFloats}});
    expect_error_containing_all([&] { read_torch_state_dict(p); }, {"crafted.pt", c.needle});
  }
}

TEST(TorchPickle, CraftedUnsupportedStorageTypeIsNamed) {
  testing::TempDir dir;
  const fs::path p = write_archive(dir, Pickle().one_tensor("QInt8Storage", 4, 0, {4}, {1}).bytes(),
                                   {{"data/0", kFourFloats}});
  expect_error_containing_all([&] { read_torch_state_dict(p); },
                          {"crafted.pt", "unsupported storage type torch.QInt8Storage"});
}

TEST(TorchPickle, CraftedMissingStorageRecordIsNamed) {
  testing::TempDir dir;
  const fs::path p =
      write_archive(dir, Pickle().one_tensor("FloatStorage", 4, 0, {4}, {1}).bytes());
  expect_error_containing_all([&] { read_torch_state_dict(p); }, {"crafted.pt", "data/0"});
}

TEST(TorchPickle, CraftedBadBoolBytesAreRefused) {
  testing::TempDir dir;
  const fs::path p = write_archive(dir, Pickle().one_tensor("BoolStorage", 2, 0, {2}, {1}).bytes(),
                                   {{"data/0", std::string("\x01\x07", 2)}});
  expect_error_containing_all([&] { read_torch_state_dict(p); }, {"neither 0 nor 1"});
}

TEST(TorchPickle, CraftedUnsupportedOpcodeIsNamedWithOffset) {
  testing::TempDir dir;
  // INST ('i', protocol 0) right after PROTO 2.
  const fs::path p = write_archive(dir, Pickle().op("i__main__\nEvil\n.").bytes());
  expect_error_containing_all([&] { read_torch_state_dict(p); },
                          {"crafted.pt", "offset 2", "opcode 0x69 ('i')"});
}

TEST(TorchPickle, CraftedMalformedPicklesGiveErrors) {
  testing::TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {Pickle().op("}(").text("w").bytes(), "truncated"},           // no STOP
      {Pickle().op("h\x05.").bytes(), "memo entry 5"},              // BINGET of nothing
      {Pickle().op("u.").bytes(), "no MARK"},                       // SETITEMS without MARK
      {Pickle().op("(s.").bytes(), "stack underflow"},              // pops below the MARK
      {Pickle().op("]}s.").bytes(), "stack underflow"},             // SETITEM, 2 items short
      {Pickle().op("K\x01}(K\x01u.").bytes(), "odd number"},        // dict from 1 item
      {Pickle().op("K\x01)R.").bytes(), "REDUCE calls an int"},     // calls an int
      {Pickle().op("X\xff\xff\xff\x7f").bytes(), "truncated"},      // string longer than data
      {Pickle().op("]K\x01K\x02s.").bytes(), "SETITEM on a list"},  // dict op on a list
      {Pickle().op("K\x01.").bytes(), "holds an int"},              // not a dict at all
      {Pickle().global("os", "system").text("ls").op("\x85R.").bytes(),
       "Python object (os.system)"},
  };
  for (const auto& [pickle, needle] : cases) {
    SCOPED_TRACE(needle);
    const fs::path p = write_archive(dir, pickle);
    expect_error_containing_all([&] { read_torch_state_dict(p); }, {"crafted.pt", needle});
  }
}

TEST(TorchPickle, CraftedDeepNestingDoesNotOverflowTheStack) {
  testing::TempDir dir;
  std::string pickle = "\x80\x02)";
  for (int i = 0; i < 300000; ++i) pickle += "\x85";  // TUPLE1 around the previous tuple
  pickle += ".";
  const fs::path p = write_archive(dir, pickle);
  expect_error_containing_all([&] { read_torch_state_dict(p); }, {"holds a tuple"});
}

TEST(TorchPickle, CraftedOverlappingViewsAreCapped) {
  testing::TempDir dir;
  // One 1 MiB storage viewed 200 times: 200 MiB of copies from a file of ~1 MiB.
  Pickle pickle;
  pickle.op("}(");
  for (int i = 0; i < 200; ++i) {
    pickle.text(std::string("w").append(std::to_string(i)))
        .global("torch._utils", "_rebuild_tensor_v2")
        .op("((");
    pickle.text("storage").global("torch", "ByteStorage").text("0").text("cpu");
    pickle.integer(1 << 20).op("tQ").integer(0).ints({1 << 20}).ints({1}).op("\x89");
    pickle.global("collections", "OrderedDict").op(")Rt").op("R");
  }
  pickle.op("u.");
  const fs::path p = write_archive(dir, pickle.bytes(), {{"data/0", std::string(1 << 20, '\1')}});
  expect_error_containing_all([&] { read_torch_state_dict(p); }, {"would copy more than"});
}

TEST(TorchPickle, FuzzedPicklesGiveErrorsNotCrashes) {
  // Mutations and truncations of a real data.pkl, re-zipped so the CRC does not hide them.
  testing::TempDir dir;
  caffe2::serialize::PyTorchStreamReader reader((kFixtures / "wrapped_state_dict.pt").string());
  auto [data, size] = reader.getRecord("data.pkl");
  const std::string pickle(static_cast<const char*>(data.get()), size);
  std::map<std::string, std::string> records;
  for (const std::string& name : reader.getAllRecords()) {
    if (name.rfind("data/", 0) != 0) continue;
    auto [rec, rec_size] = reader.getRecord(name);
    records[name] = std::string(static_cast<const char*>(rec.get()), rec_size);
  }
  ASSERT_NO_THROW(read_torch_state_dict(write_archive(dir, pickle, records)));
  for (size_t n = 0; n < pickle.size(); n += 3) {
    SCOPED_TRACE(n);
    expect_success_or_error(write_archive(dir, pickle.substr(0, n), records));
  }
  std::mt19937 rng(11);
  std::uniform_int_distribution<size_t> at(0, pickle.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 300; ++round) {
    std::string bad = pickle;
    for (int k = 0; k < 1 + round % 3; ++k) bad[at(rng)] = static_cast<char>(byte(rng));
    expect_success_or_error(write_archive(dir, bad, records));
  }
}

}  // namespace
}  // namespace ppreid::reid
