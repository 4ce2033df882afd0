#include "protocols/keys.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zmq.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "core/util/atomic_file.h"
#include "tests/protocols/protocol_test_util.h"
#include "tests/support/errors.h"
#include "tests/support/run_cli.h"
#include "tests/support/temp_dir.h"

namespace ppreid::proto {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 07777;
}

void write_text(const fs::path& p, const std::string& text, unsigned mode = 0600) {
  std::ofstream(p, std::ios::binary) << text;
  ::chmod(p.c_str(), mode);
}

class KeysTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
};

TEST_F(KeysTest, KeygenWritesASecretAndAPublicFile) {
  const PublicKey pub = write_keypair(dir_ / "site-a");
  const KeyFiles files = key_files(dir_ / "site-a");
  EXPECT_EQ(files.secret_file, dir_ / "site-a.key");
  EXPECT_EQ(files.public_file, dir_ / "site-a.pub");
  EXPECT_EQ(mode_of(files.secret_file), 0600u);
  EXPECT_EQ(mode_of(files.public_file), 0644u);
  const std::string pub_text = util::read_file(files.public_file);
  const std::string secret_text = util::read_file(files.secret_file);
  EXPECT_EQ(pub_text, pub.z85() + "\n");
  EXPECT_EQ(pub_text.size(), 41u);
  EXPECT_EQ(secret_text.size(), 41u);
  // The format of ZeroMQ's own tools: Z85 that libzmq decodes, and the halves belong together.
  char derived[41];
  ASSERT_EQ(zmq_curve_public(derived, secret_text.substr(0, 40).c_str()), 0);
  EXPECT_EQ(std::string(derived, 40), pub.z85());
  const KeyPair pair = read_secret_key(files.secret_file);
  EXPECT_EQ(pair.public_key, pub);
  EXPECT_EQ(read_public_key(files.public_file), pub);
  EXPECT_EQ(pair.secret_key.z85(), secret_text.substr(0, 40));
  // A directory listing shows nothing but the two files (no temporary left behind).
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_.path()), fs::directory_iterator()), 2);
}

TEST_F(KeysTest, KeygenNeverOverwrites) {
  write_keypair(dir_ / "agg");
  const std::string before = util::read_file(dir_ / "agg.key");
  EXPECT_THAT(testing::error_of([&] { write_keypair(dir_ / "agg"); }),
              HasSubstr("already exists; refusing to overwrite"));
  EXPECT_EQ(util::read_file(dir_ / "agg.key"), before);
  // Either half existing is enough to refuse.
  write_text(dir_ / "other.pub", "x");
  EXPECT_THAT(testing::error_of([&] { write_keypair(dir_ / "other"); }),
              HasSubstr("'" + (dir_ / "other.pub").string() + "' already exists"));
  EXPECT_FALSE(fs::exists(dir_ / "other.key"));
  EXPECT_THAT(testing::error_of([&] { write_keypair(dir_ / "missing" / "k"); }),
              HasSubstr("does not exist"));
}

TEST_F(KeysTest, SecretFilesOthersCanReadAreRefused) {
  write_keypair(dir_ / "site");
  const fs::path key = dir_ / "site.key";
  for (unsigned mode : {0640u, 0604u, 0660u}) {
    ::chmod(key.c_str(), mode);
    EXPECT_THAT(testing::error_of([&] { read_secret_key(key); }),
                HasSubstr("group or others may read or write it; run `chmod 600 " + key.string()));
  }
  ::chmod(key.c_str(), 0600);
  EXPECT_NO_THROW(read_secret_key(key));
  EXPECT_THAT(testing::error_of([&] { read_secret_key(dir_ / "nope.key"); }),
              HasSubstr("ppreid keygen --out PREFIX"));
}

TEST_F(KeysTest, MalformedKeysAreRefusedWithoutQuotingSecrets) {
  const KeyPair real = generate_keypair();
  const std::string secret(real.secret_key.z85());
  const std::vector<std::string> bad = {
      secret.substr(0, 39) + "\n",       // too short
      secret + "A\n",                    // too long
      secret.substr(0, 39) + "~\n",      // not Z85
      secret.substr(0, 39) + " \n",      // space
      "",                                // empty
      secret + "\n" + secret + "\n"};    // two keys
  for (const std::string& text : bad) {
    write_text(dir_ / "bad.key", text);
    const std::string msg = testing::error_of([&] { read_secret_key(dir_ / "bad.key"); });
    EXPECT_THAT(msg, HasSubstr("does not hold a CURVE secret key"));
    EXPECT_THAT(msg, Not(HasSubstr(secret.substr(0, 20))));
    write_text(dir_ / "bad.pub", text, 0644);
    EXPECT_THAT(testing::error_of([&] { read_public_key(dir_ / "bad.pub"); }),
                HasSubstr("does not hold a CURVE public key"));
  }
  // A trailing CRLF or no newline at all is fine.
  write_text(dir_ / "crlf.pub", real.public_key.z85() + "\r\n", 0644);
  EXPECT_EQ(read_public_key(dir_ / "crlf.pub"), real.public_key);
  write_text(dir_ / "bare.key", secret);
  EXPECT_EQ(read_secret_key(dir_ / "bare.key").public_key, real.public_key);
}

TEST_F(KeysTest, PublicKeysConvertBetweenZ85AndBytes) {
  const PublicKey k = generate_keypair().public_key;
  EXPECT_EQ(PublicKey::from_bytes(k.bytes()), k);
  EXPECT_THAT(testing::error_of([] { PublicKey::from_z85("short"); }),
              HasSubstr("is not a CURVE public key"));
}

TEST_F(KeysTest, AllowListMapsKeysToSiteIds) {
  const fs::path allow = dir_ / "allow";
  fs::create_directories(allow);
  const PublicKey a = write_keypair(dir_ / "a"), b = write_keypair(dir_ / "b");
  fs::copy_file(dir_ / "a.pub", allow / "site-a.pub");
  fs::copy_file(dir_ / "b.pub", allow / "site-b.pub");
  write_text(allow / "README", "not a key", 0644);
  const AllowList list = AllowList::load(allow);
  EXPECT_EQ(list.size(), 2u);
  EXPECT_EQ(list.site_for(a), "site-a");
  EXPECT_EQ(list.site_for(b), "site-b");
  EXPECT_EQ(list.site_for(generate_keypair().public_key), std::nullopt);
  EXPECT_EQ(list.dir(), allow);

  // A secret key there is reported (without its contents).
  testing::LogCapture log;
  fs::copy_file(dir_ / "a.key", allow / "a.key");
  AllowList::load(allow);
  EXPECT_THAT(log.text(), HasSubstr("holds the secret key file 'a.key'"));
}

TEST_F(KeysTest, AllowListRefusesAmbiguousOrInvalidEntries) {
  const fs::path allow = dir_ / "allow";
  EXPECT_THAT(testing::error_of([&] { AllowList::load(allow); }), HasSubstr("does not exist"));
  fs::create_directories(allow);
  EXPECT_THAT(testing::error_of([&] { AllowList::load(allow); }), HasSubstr("has no *.pub files"));
  write_keypair(dir_ / "a");
  fs::copy_file(dir_ / "a.pub", allow / "site-a.pub");
  fs::copy_file(dir_ / "a.pub", allow / "site-z.pub");
  EXPECT_THAT(testing::error_of([&] { AllowList::load(allow); }),
              HasSubstr("hold the same public key; one key cannot be two sites"));
  fs::remove(allow / "site-z.pub");
  write_keypair(dir_ / "b");
  fs::copy_file(dir_ / "b.pub", allow / "site b.pub");
  EXPECT_THAT(testing::error_of([&] { AllowList::load(allow); }),
              HasSubstr("'site b' is not a valid site id"));
  fs::remove(allow / "site b.pub");
  write_text(allow / "site-c.pub", "garbage\n", 0644);
  EXPECT_THAT(testing::error_of([&] { AllowList::load(allow); }),
              HasSubstr("does not hold a CURVE public key"));
}

TEST_F(KeysTest, KeygenCommand) {
  const std::string prefix = (dir_ / "site-a").string();
  testing::RunResult r = testing::run_ppreid("keygen --out " + prefix);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("site-a.key (secret key, mode 0600"));
  const std::string pub = util::read_file(prefix + ".pub").substr(0, 40);
  EXPECT_THAT(r.out, HasSubstr(pub));
  EXPECT_THAT(r.out, Not(HasSubstr(util::read_file(prefix + ".key").substr(0, 40))));
  r = testing::run_ppreid("keygen --out " + prefix);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("refusing to overwrite"));
  r = testing::run_ppreid("keygen --json --out " + (dir_ / "agg").string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["public_key"],
            util::read_file(dir_ / "agg.pub").substr(0, 40));
  r = testing::run_ppreid("keygen");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("--out"));
}

}  // namespace
}  // namespace ppreid::proto
