#include "aggregator/site_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/errors.h"

namespace ppreid::agg {
namespace {

using ::testing::HasSubstr;

TEST(SiteRegistry, BindsEachSiteIdToOneKeyAndBack) {
  SiteRegistry r;
  r.register_site("utrecht", "key-u");
  r.register_site("utrecht", "key-u");  // a reconnect
  EXPECT_THAT(testing::error_of([&] { r.register_site("utrecht", "key-x"); }),
              HasSubstr("bound to its key"));
  EXPECT_THAT(testing::error_of([&] { r.register_site("delft", "key-u"); }),
              HasSubstr("already belongs to site 'utrecht'"));
  EXPECT_THAT(testing::error_of([&] { r.register_site("has space", "k"); }),
              HasSubstr("printable"));
  EXPECT_EQ(r.size(), 1u);
}

TEST(SiteRegistry, RecordsUpdatesAndRoundTripsThroughJson) {
  SiteRegistry r;
  r.register_site("a", "ka");
  r.register_site("b", "kb");
  r.record_update("a", 3, 1200);
  EXPECT_THAT(testing::error_of([&] { r.record_update("a", 2, 10); }), HasSubstr("after one"));
  EXPECT_THAT(testing::error_of([&] { r.record_update("zz", 2, 10); }),
              HasSubstr("not registered"));
  SiteRegistry back = SiteRegistry::from_json(r.to_json(), 3, "sites.json");
  ASSERT_NE(back.find("a"), nullptr);
  EXPECT_EQ(back.find("a")->last_seen_round, 3);
  EXPECT_EQ(back.find("a")->samples, 1200);
  EXPECT_EQ(back.find("b")->last_seen_round, -1);
  EXPECT_EQ(back.to_json(), r.to_json());
}

TEST(SiteRegistry, FromJsonNamesTheBadEntry) {
  auto entry = [](const char* id, const char* key, int round) {
    return nlohmann::json{{"id", id}, {"key_fingerprint", key}, {"last_seen_round", round},
                          {"samples", 5}};
  };
  EXPECT_THAT(testing::error_of([&] {
                SiteRegistry::from_json(nlohmann::json::array({entry("a", "k1", 1), entry("a", "k2", 1)}), 3, "s.json");
              }),
              HasSubstr("s.json: site entry 1: site 'a' is listed twice"));
  EXPECT_THAT(testing::error_of([&] {
                SiteRegistry::from_json(nlohmann::json::array({entry("a", "k1", 1), entry("b", "k1", 1)}), 3, "s.json");
              }),
              HasSubstr("already belongs"));
  EXPECT_THAT(testing::error_of([&] { SiteRegistry::from_json(nlohmann::json::array({entry("a", "k", 4)}), 3, "s.json"); }),
              HasSubstr("last_seen_round 4 is outside -1..3"));
  nlohmann::json no_key = entry("a", "k", 1);
  no_key.erase("key_fingerprint");
  EXPECT_THAT(testing::error_of([&] { SiteRegistry::from_json(nlohmann::json::array({no_key}), 3, "s.json"); }),
              HasSubstr("field 'key_fingerprint'"));
  EXPECT_THAT(testing::error_of([&] { SiteRegistry::from_json(nlohmann::json::object(), 3, "s.json"); }),
              HasSubstr("array"));
}

}  // namespace
}  // namespace ppreid::agg
