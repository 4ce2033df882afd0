#include "core/data/loader.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <future>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "core/util/error.h"
#include "core/util/image.h"
#include "tests/support/temp_dir.h"

namespace ppreid::data {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A hand-built train split on disk: `ids` identities with `per_id` small JPEGs each, plus a
// few query images. Built without load_dataset so the loader is tested on its own.
class LoaderTest : public ::testing::Test {
 protected:
  void make_dataset(int ids, int per_id) {
    dataset_.root = dir_.path();
    fs::create_directories(dir_ / "bounding_box_train");
    fs::create_directories(dir_ / "query");
    cv::RNG rng(5);
    for (int id = 0; id < ids; ++id)
      for (int i = 0; i < per_id; ++i) {
        ImageRecord r;
        r.pid = 10 + 3 * id;
        r.camid = i % 3;
        r.label = id;
        r.path = "bounding_box_train/" + std::to_string(r.pid) + "_c" +
                 std::to_string(r.camid + 1) + "_" + std::to_string(i) + ".jpg";
        write_image(r.path, rng);
        dataset_.train.push_back(r);
      }
    for (int i = 0; i < 10; ++i) {
      ImageRecord r;
      r.pid = 500 + i / 2;
      r.camid = i % 2;
      r.path = "query/q" + std::to_string(i) + ".jpg";
      write_image(r.path, rng);
      dataset_.query.push_back(r);
    }
    dataset_.num_train_ids = ids;
  }

  void write_image(const std::string& relative, cv::RNG& rng) {
    cv::Mat m(40, 20, CV_8UC3, cv::Scalar(rng.uniform(0, 255), rng.uniform(0, 255), 90));
    cv::rectangle(m, cv::Rect(rng.uniform(0, 10), rng.uniform(0, 20), 8, 14),
                  cv::Scalar(rng.uniform(0, 255), 30, rng.uniform(0, 255)), cv::FILLED);
    ASSERT_TRUE(cv::imwrite((dir_ / relative).string(), m));
  }

  static TransformOptions small_transform() {
    TransformOptions t;
    t.height = 32;
    t.width = 16;
    t.pad = 2;
    return t;
  }

  static LoaderOptions options(int p, int k, int workers, int prefetch = 2) {
    LoaderOptions o;
    o.p = p;
    o.k = k;
    o.workers = workers;
    o.prefetch_batches = prefetch;
    o.seed = 17;
    return o;
  }

  static std::vector<Batch> drain(TrainLoader& loader) {
    std::vector<Batch> out;
    while (auto b = loader.next()) out.push_back(std::move(*b));
    return out;
  }

  static void expect_same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      SCOPED_TRACE("batch " + std::to_string(i));
      EXPECT_TRUE(torch::equal(a[i].images, b[i].images));
      EXPECT_TRUE(torch::equal(a[i].labels, b[i].labels));
      EXPECT_TRUE(torch::equal(a[i].indices, b[i].indices));
    }
  }

  testing::TempDir dir_;
  Dataset dataset_;
};

TEST_F(LoaderTest, BatchesCarryImagesAndMetadataOfTheirRecords) {
  make_dataset(6, 4);
  TrainLoader loader(dataset_, small_transform(), options(3, 2, 0));
  loader.start_epoch(0);
  const auto batches = drain(loader);
  ASSERT_EQ(static_cast<int>(batches.size()), loader.batches_per_epoch());
  ASSERT_EQ(batches.size(), 4u);  // 6 ids x 2 chunks of K=2, 3 ids per batch
  for (const Batch& b : batches) {
    ASSERT_EQ(b.images.sizes(), (std::vector<int64_t>{6, 3, 32, 16}));
    ASSERT_EQ(b.labels.scalar_type(), torch::kInt64);
    ASSERT_EQ(b.size(), 6);
    for (int64_t i = 0; i < b.size(); ++i) {
      const ImageRecord& r = dataset_.train[b.indices[i].item<int64_t>()];
      EXPECT_EQ(b.labels[i].item<int64_t>(), r.label);
      EXPECT_EQ(b.pids[i].item<int64_t>(), r.pid);
      EXPECT_EQ(b.camids[i].item<int64_t>(), r.camid);
    }
    EXPECT_EQ(std::get<0>(at::_unique(b.labels)).numel(), 3);
  }
}

TEST_F(LoaderTest, AugmentationFollowsTheSampleSeed) {
  make_dataset(4, 2);
  TrainLoader loader(dataset_, small_transform(), options(2, 2, 0));
  loader.start_epoch(0);
  const Batch b = *loader.next();
  const auto plan = loader.sampler().epoch(0).front();
  const TrainTransform transform(small_transform());
  for (std::size_t i = 0; i < plan.size(); ++i) {
    util::Rng rng(plan[i].seed);
    const cv::Mat image = util::decode_image(dataset_.absolute(dataset_.train[plan[i].index]));
    EXPECT_TRUE(torch::equal(b.images[static_cast<int64_t>(i)], transform(image, rng)));
  }
}

TEST_F(LoaderTest, SameBatchesWithZeroAndTwoWorkers) {
  make_dataset(8, 5);
  TrainLoader serial(dataset_, small_transform(), options(2, 2, 0));
  TrainLoader parallel(dataset_, small_transform(), options(2, 2, 2, 3));
  for (int epoch : {0, 1}) {
    serial.start_epoch(epoch);
    parallel.start_epoch(epoch);
    const auto a = drain(serial);
    const auto b = drain(parallel);
    EXPECT_GT(a.size(), 5u);
    expect_same(a, b);
  }
  // Epochs differ from each other.
  serial.start_epoch(0);
  const auto e0 = drain(serial);
  serial.start_epoch(1);
  EXPECT_FALSE(torch::equal(e0[0].images, drain(serial)[0].images));
}

TEST_F(LoaderTest, PrefetchesAheadButNoFurther) {
  make_dataset(12, 4);  // 24 chunks of K=2, P=2 -> about 12 batches
  TrainLoader loader(dataset_, small_transform(), options(2, 2, 2, 3));
  EXPECT_EQ(loader.batches_loaded(), 0);
  loader.start_epoch(0);
  ASSERT_GT(loader.batches_per_epoch(), 6);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (loader.batches_loaded() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(loader.batches_loaded(), 3) << "three batches decoded before any next()";
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(loader.batches_loaded(), 3) << "decoded beyond prefetch_batches";
  ASSERT_TRUE(loader.next().has_value());
  while (loader.batches_loaded() < 4 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(loader.batches_loaded(), 4);
}

TEST_F(LoaderTest, CorruptImageErrorNamesThePath) {
  make_dataset(4, 2);
  const fs::path bad = dataset_.absolute(dataset_.train[5]);
  std::ofstream(bad, std::ios::binary | std::ios::trunc) << "\xff\xd8 truncated garbage";
  for (int workers : {0, 2}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    TrainLoader loader(dataset_, small_transform(), options(2, 2, workers));
    loader.start_epoch(0);
    try {
      while (loader.next()) {
      }
      FAIL() << "the corrupt image was never reported";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad.string()), std::string::npos) << e.what();
    }
  }
}

TEST_F(LoaderTest, DestroyingMidEpochDoesNotHang) {
  make_dataset(12, 4);
  auto* loader = new TrainLoader(dataset_, small_transform(), options(2, 2, 2, 4));
  loader->start_epoch(0);
  ASSERT_TRUE(loader->next().has_value());
  std::promise<void> destroyed;
  auto done = destroyed.get_future();
  std::thread destroyer([&] {
    delete loader;
    destroyed.set_value();
  });
  if (done.wait_for(10s) != std::future_status::ready) {
    destroyer.detach();  // leak rather than hang the whole suite
    FAIL() << "~TrainLoader hung mid-epoch";
  }
  destroyer.join();
}

TEST_F(LoaderTest, RestartingAnEpochMidwayGivesTheFullEpoch) {
  make_dataset(8, 4);
  TrainLoader loader(dataset_, small_transform(), options(2, 2, 2));
  loader.start_epoch(3);
  const auto full = drain(loader);
  loader.start_epoch(3);
  ASSERT_TRUE(loader.next().has_value());
  ASSERT_TRUE(loader.next().has_value());
  loader.start_epoch(3);  // mid-epoch, with batches in flight
  expect_same(full, drain(loader));
  EXPECT_FALSE(loader.next().has_value());  // stays at the end
}

TEST_F(LoaderTest, RecyclesBatchMemory) {
  make_dataset(8, 4);
  TrainLoader loader(dataset_, small_transform(), options(2, 2, 0));
  loader.start_epoch(0);
  const void* first = loader.next()->images.data_ptr();  // the batch dies at the semicolon
  auto second = loader.next();
  EXPECT_EQ(second->images.data_ptr(), first);
  auto third = loader.next();  // `second` is still alive: a different buffer
  EXPECT_NE(third->images.data_ptr(), first);
  // A pooled batch is an ordinary tensor: it outlives the loader and can be modified.
  second.reset();
  Batch kept = *third;
  third.reset();
  kept.images.add_(1.f);
  EXPECT_EQ(kept.images.sizes(), (std::vector<int64_t>{4, 3, 32, 16}));
}

TEST(LoaderBufferPool, ReusesAndBoundsIdleBuffers) {
  auto pool = std::make_shared<BatchBufferPool>(1);
  torch::Tensor a = pool->empty({2, 3});
  torch::Tensor b = pool->empty({4});
  const void* pa = a.data_ptr();
  a = torch::Tensor();
  b = torch::Tensor();
  EXPECT_EQ(pool->free_buffers(), 1u);  // the second idle buffer was freed
  EXPECT_EQ(pool->empty({6}).data_ptr(), pa);
  EXPECT_EQ(pool->empty({1, 1}).sizes(), (std::vector<int64_t>{1, 1}));
  torch::Tensor big = pool->empty({1000});  // larger than any idle buffer: a new one
  big.fill_(2.f);
  EXPECT_EQ(big.sum().item<float>(), 2000.f);
}

TEST_F(LoaderTest, RejectsMisuse) {
  make_dataset(4, 2);
  TrainLoader loader(dataset_, small_transform(), options(2, 2, 0));
  EXPECT_THROW(loader.next(), Error);  // no epoch started
  EXPECT_THROW(TrainLoader(dataset_, small_transform(), options(5, 2, 0)), Error);
  EXPECT_THROW(TrainLoader(dataset_, small_transform(), options(2, 2, -1)), Error);
  EXPECT_THROW(TrainLoader(dataset_, small_transform(), options(2, 2, 1, 0)), Error);
}

TEST_F(LoaderTest, EvalLoaderVisitsTheSplitInOrder) {
  make_dataset(2, 2);
  const TransformOptions t = small_transform();
  for (int workers : {0, 2}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    EvalLoader loader(dataset_, SplitKind::kQuery, t, {.batch_size = 4, .workers = workers});
    EXPECT_EQ(loader.num_batches(), 3);
    EXPECT_EQ(loader.num_images(), 10u);
    const TestTransform transform(t);
    std::vector<int64_t> sizes;
    int64_t next_index = 0;
    while (auto b = loader.next()) {
      sizes.push_back(b->size());
      for (int64_t i = 0; i < b->size(); ++i, ++next_index) {
        EXPECT_EQ(b->indices[i].item<int64_t>(), next_index);
        const ImageRecord& r = dataset_.query[next_index];
        EXPECT_EQ(b->pids[i].item<int64_t>(), r.pid);
        EXPECT_EQ(b->labels[i].item<int64_t>(), -1);
        EXPECT_TRUE(
            torch::equal(b->images[i], transform(util::decode_image(dataset_.absolute(r)))));
      }
    }
    EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4, 2}));
    loader.restart();
    auto first = loader.next();
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->indices[0].item<int64_t>(), 0);
  }
  EvalLoader empty(dataset_.root, {}, t, {.batch_size = 4, .workers = 1});
  EXPECT_FALSE(empty.next().has_value());
  EXPECT_EQ(empty.num_batches(), 0);
}

}  // namespace
}  // namespace ppreid::data
