#include "core/deid/pis/one_time_key.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "tests/core/deid/pis/pis_test_data.h"
#include "tests/support/temp_dir.h"

namespace ppreid::deid::pis {
namespace {

namespace fs = std::filesystem;

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

void write_raw(const fs::path& p, const std::string& bytes, unsigned mode) {
  { std::ofstream(p, std::ios::binary) << bytes; }
  fs::permissions(p, static_cast<fs::perms>(mode), fs::perm_options::replace);
}

// Runs `f`, expects an Error containing `needle`, and returns its message.
template <typename F>
std::string error_of(F&& f, const std::string& needle) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error, expected: " << needle;
  return "";
}

ShiftPlan sample_plan() {
  PartnerOptions o;
  o.seed = 11;
  return plan_identity_shift(testdata::market_like(), nullptr, o, make_lambdas());
}

class OneTimeKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    create_key_file(key());
    create_key_file(other_key());
  }
  fs::path key() const { return dir_ / "owner.key"; }
  fs::path other_key() const { return dir_ / "other.key"; }
  fs::path otk() const { return dir_ / "release.otk"; }
  testing::TempDir dir_;
};

TEST_F(OneTimeKeyTest, KeyFileIsPrivateHexAndRefusesOverwrite) {
  EXPECT_EQ(mode_of(key()), 0600u);
  std::string text = util::read_file(key());
  ASSERT_EQ(text.size(), 65u);
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find_first_not_of("0123456789abcdef"), 64u);
  auto bytes = read_key_file(key());
  char hex[3];
  std::snprintf(hex, sizeof hex, "%02x", bytes[31]);
  EXPECT_EQ(text.substr(62, 2), hex);
  EXPECT_NE(read_key_file(other_key()), bytes);  // fresh randomness each time

  error_of([&] { create_key_file(key()); }, "refusing to overwrite");
  EXPECT_EQ(util::read_file(key()), text);
  // No temporary files left behind.
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_.path())) ++entries;
  EXPECT_EQ(entries, 2);
  error_of([&] { create_key_file(dir_ / "no-such-dir" / "k"); }, "does not exist");
}

TEST_F(OneTimeKeyTest, ReadKeyFileRefusesSharedOrMalformedFilesWithoutPrintingTheKey) {
  const std::string text = util::read_file(key());
  const std::string hex = text.substr(0, 64);
  fs::path shared = dir_ / "shared.key";
  write_raw(shared, text, 0644);
  std::string msg = error_of([&] { read_key_file(shared); }, "chmod 600 " + shared.string());
  EXPECT_EQ(msg.find(hex), std::string::npos);
  write_raw(shared, text, 0620);
  error_of([&] { read_key_file(shared); }, "chmod 600");

  for (const std::string& contents :
       {hex.substr(0, 63) + "\n", hex + "0\n", hex.substr(0, 63) + "g\n", std::string(""),
        hex + "\n" + hex + "\n"}) {
    fs::path bad = dir_ / "bad.key";
    write_raw(bad, contents, 0600);
    std::string m = error_of([&] { read_key_file(bad); }, "not a ppreid key file");
    EXPECT_EQ(m.find(hex.substr(0, 16)), std::string::npos) << m;
  }
  fs::path no_newline = dir_ / "plain.key";
  write_raw(no_newline, hex, 0600);
  EXPECT_EQ(read_key_file(no_newline), read_key_file(key()));
  error_of([&] { read_key_file(dir_ / "missing.key"); }, "pis keygen");
}

TEST_F(OneTimeKeyTest, RoundTripsOnlyWithTheRightKey) {
  ShiftPlan plan = sample_plan();
  write_one_time_key(otk(), plan, key());
  EXPECT_EQ(mode_of(otk()), 0600u);
  std::string bytes = util::read_file(otk());
  EXPECT_EQ(bytes.rfind("PPREID-OTK1", 0), 0u);
  EXPECT_EQ(bytes.find("original_pid"), std::string::npos);  // encrypted, not just encoded
  EXPECT_EQ(bytes.size(), 11 + 12 + plan_to_json(plan).dump().size() + 16);
  EXPECT_EQ(read_one_time_key(otk(), key()), plan);

  const std::string expected =
      "cannot decrypt '" + otk().string() + "': wrong key file or the file was modified";
  error_of([&] { read_one_time_key(otk(), other_key()); }, expected);

  // Any flipped byte after the magic (nonce, ciphertext, tag) fails authentication; so does a
  // modified magic (it is the associated data) and a truncated file.
  for (size_t at : {size_t{11}, size_t{11 + 12 + 5}, bytes.size() / 2, bytes.size() - 1}) {
    std::string tampered = bytes;
    tampered[at] ^= 0x01;
    write_raw(otk(), tampered, 0600);
    error_of([&] { read_one_time_key(otk(), key()); }, expected);
  }
  write_raw(otk(), bytes.substr(0, bytes.size() - 1), 0600);
  error_of([&] { read_one_time_key(otk(), key()); }, expected);
  std::string renamed = bytes;
  renamed[6] = 'X';
  write_raw(otk(), renamed, 0600);
  error_of([&] { read_one_time_key(otk(), key()); }, "not a ppreid one-time key");
  write_raw(otk(), "PPREID-OTK1", 0600);
  error_of([&] { read_one_time_key(otk(), key()); }, "not a ppreid one-time key");

  // Encrypting twice uses a fresh nonce: equal plans do not give equal files.
  write_one_time_key(otk(), plan, key());
  std::string again = util::read_file(otk());
  EXPECT_NE(again.substr(11, 12), bytes.substr(11, 12));
  EXPECT_EQ(read_one_time_key(otk(), key()), plan);
}

}  // namespace
}  // namespace ppreid::deid::pis
