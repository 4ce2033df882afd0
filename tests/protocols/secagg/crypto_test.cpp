#include "protocols/secagg/crypto.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstring>
#include <string>

#include "core/util/error.h"
#include "protocols/secagg/shamir.h"

namespace ppreid::secagg {
namespace {

Bytes hex(const std::string& h) {
  Bytes out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

Key32 key32(const std::string& h) {
  Bytes b = hex(h);
  Key32 k{};
  std::copy(b.begin(), b.end(), k.begin());
  return k;
}

// RFC 7748 section 6.1: Alice and Bob.
TEST(X25519, Rfc7748DiffieHellmanVectors) {
  const Secret32 alice(key32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
  const Secret32 bob(key32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
  const Key32 alice_pub = key32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  const Key32 bob_pub = key32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  EXPECT_EQ(X25519KeyPair::from_secret(alice).public_key, alice_pub);
  EXPECT_EQ(X25519KeyPair::from_secret(bob).public_key, bob_pub);
  const Key32 shared = key32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  EXPECT_EQ(x25519(alice, bob_pub).bytes(), shared);
  EXPECT_EQ(x25519(bob, alice_pub).bytes(), shared);
}

// RFC 7748 section 5.2, first scalar multiplication vector.
TEST(X25519, Rfc7748ScalarMultiplicationVector) {
  const Secret32 scalar(key32("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"));
  const Key32 u = key32("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
  EXPECT_EQ(x25519(scalar, u).bytes(),
            key32("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"));
}

TEST(X25519, RefusesALowOrderPeerKey) {
  const Key32 zero{};  // u = 0 is of small order: the shared secret would be all zeros
  EXPECT_THROW(x25519(random_secret(), zero), Error);
}

// RFC 5869 appendix A, test cases 1 and 3.
TEST(Hkdf, Rfc5869Vectors) {
  const Bytes ikm = hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  EXPECT_EQ(hkdf_sha256(ikm, hex("000102030405060708090a0b0c"), hex("f0f1f2f3f4f5f6f7f8f9"), 42),
            hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887"
                "185865"));
  EXPECT_EQ(hkdf_sha256(ikm, {}, {}, 42),
            hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b6"
                "1a96c8"));
}

TEST(AesGcm, RoundTripsAndDetectsEveryTampering) {
  const Secret32 key = random_secret();
  const Bytes plain = hex("00112233445566778899aabbccddeeff0102");
  const Bytes ad = hex("abcdef");
  const Bytes sealed = seal(key, plain, ad);
  ASSERT_EQ(sealed.size(), 12 + plain.size() + 16);
  Bytes out;
  ASSERT_TRUE(open(key, sealed, ad, out));
  EXPECT_EQ(out, plain);
  for (std::size_t i = 0; i < sealed.size(); ++i) {  // nonce, ciphertext and tag bytes alike
    Bytes bad = sealed;
    bad[i] ^= 0x01;
    EXPECT_FALSE(open(key, bad, ad, out)) << "byte " << i;
    EXPECT_TRUE(out.empty());
  }
  EXPECT_FALSE(open(key, sealed, hex("abcdee"), out));  // other associated data
  EXPECT_FALSE(open(random_secret(), sealed, ad, out));
  EXPECT_FALSE(open(key, Bytes(sealed.begin(), sealed.begin() + 20), ad, out));
  EXPECT_NE(seal(key, plain, ad), sealed);  // a fresh nonce each time
}

// The mask stream is AES-256 of the big-endian counter blocks 0, 1, 2... (CTR with IV 0).
TEST(KeyStream, IsAes256OfCounterBlocksAndContinues) {
  const Secret32 seed(key32("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"));
  Bytes expected(64);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ASSERT_EQ(EVP_EncryptInit_ex(ctx, EVP_aes_256_ecb(), nullptr, seed.bytes().data(), nullptr), 1);
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  for (int block = 0; block < 4; ++block) {
    std::uint8_t counter[16] = {};
    counter[15] = static_cast<std::uint8_t>(block);
    int len = 0;
    ASSERT_EQ(EVP_EncryptUpdate(ctx, expected.data() + 16 * block, &len, counter, 16), 1);
  }
  EVP_CIPHER_CTX_free(ctx);
  KeyStream stream(seed);
  Bytes got(64);
  stream.next(got.data(), 5);  // piece by piece, across block boundaries
  stream.next(got.data() + 5, 40);
  stream.next(got.data() + 45, 19);
  EXPECT_EQ(got, expected);

  std::vector<std::uint32_t> words(16);
  apply_stream(seed, std::span<std::uint32_t>(words), StreamOp::kFill);
  EXPECT_EQ(0, std::memcmp(words.data(), expected.data(), 64));
}

TEST(KeyStream, AddAndSubtractCancelModuloTheWordSize) {
  const Secret32 seed = random_secret();
  std::vector<std::uint64_t> words(100003);
  for (std::size_t i = 0; i < words.size(); ++i) words[i] = i * 0x9E3779B97F4A7C15ull;
  const auto original = words;
  apply_stream(seed, std::span<std::uint64_t>(words), StreamOp::kAdd);
  EXPECT_NE(words, original);
  apply_stream(seed, std::span<std::uint64_t>(words), StreamOp::kSubtract);
  EXPECT_EQ(words, original);
}

// ---- Shamir over GF(2^61 - 1) -------------------------------------------------------------

TEST(Field, MultiplicationAndInverseAgreeWithHandValues) {
  EXPECT_EQ(detail::field_mul(kFieldPrime - 1, kFieldPrime - 1), 1u);  // (-1)^2
  EXPECT_EQ(detail::field_mul(std::uint64_t{1} << 60, 2), 1u);         // 2^61 = 1
  EXPECT_EQ(detail::field_mul(123456789, 987654321), 123456789ull * 987654321ull % kFieldPrime);
  for (std::uint64_t a : {std::uint64_t{2}, std::uint64_t{3}, std::uint64_t{1234567}, kFieldPrime - 2})
    EXPECT_EQ(detail::field_mul(a, detail::field_inverse(a)), 1u) << a;
}

TEST(Shamir, AnyThresholdSubsetRebuildsTheSecret) {
  const Secret32 secret = random_secret();
  const std::vector<std::uint32_t> xs = {1, 2, 3, 4, 5, 6, 7};
  const std::vector<Share> shares = split(secret, 4, xs);
  ASSERT_EQ(shares.size(), 7u);
  int subsets = 0;
  for (unsigned mask = 0; mask < (1u << 7); ++mask) {
    if (__builtin_popcount(mask) < 4) continue;
    std::vector<Share> pick;
    for (int i = 0; i < 7; ++i)
      if (mask & (1u << i)) pick.push_back(shares[i]);
    EXPECT_EQ(combine(pick, 4), secret) << "subset " << mask;
    ++subsets;
  }
  EXPECT_EQ(subsets, 64);  // C(7,4) + C(7,5) + C(7,6) + C(7,7)
}

TEST(Shamir, FewerThanThresholdSharesFailOrGiveAnotherSecret) {
  const Secret32 secret = random_secret();
  const std::vector<std::uint32_t> xs = {3, 9, 27, 81, 243};
  const std::vector<Share> shares = split(secret, 3, xs);
  EXPECT_THROW(combine(std::span(shares).first(2), 3), Error);
  // Pretending the threshold were 2 interpolates the wrong polynomial: not the secret.
  bool any_equal = false;
  try {
    any_equal = combine(std::span(shares).first(2), 2) == secret;
  } catch (const Error&) {
    // the chunks left the 7-byte range: refused as not a secret, which is fine too
  }
  EXPECT_FALSE(any_equal);
}

TEST(Shamir, CorruptedOrRepeatedSharesAreRefused) {
  const std::vector<std::uint32_t> xs = {1, 2, 3, 4, 5};
  std::vector<Share> shares = split(random_secret(), 3, xs);
  std::vector<Share> repeated = {shares[0], shares[0], shares[1]};
  EXPECT_THROW(combine(repeated, 3), Error);
  shares[4].y[2] = (shares[4].y[2] + 1) % kFieldPrime;  // checked against the first three
  EXPECT_THROW(combine(shares, 3), Error);
  EXPECT_THROW(split(random_secret(), 6, xs), Error);
  EXPECT_THROW(split(random_secret(), 2, std::vector<std::uint32_t>{1, 1, 2}), Error);
  EXPECT_THROW(split(random_secret(), 2, std::vector<std::uint32_t>{0, 1, 2}), Error);
}

TEST(Shamir, SharesRoundTripThroughBytesAndBadBytesAreRefused) {
  const std::vector<std::uint32_t> xs = {1, 2};
  const Share s = split(random_secret(), 2, xs)[1];
  const Bytes b = s.to_bytes();
  ASSERT_EQ(b.size(), kShareBytes);
  EXPECT_EQ(Share::from_bytes(b), s);
  EXPECT_FALSE(Share::from_bytes(std::span(b).first(kShareBytes - 1)));
  Bytes zero_x = b;
  std::fill(zero_x.begin(), zero_x.begin() + 4, 0);
  EXPECT_FALSE(Share::from_bytes(zero_x));
  Bytes out_of_field = b;
  std::fill(out_of_field.begin() + 4, out_of_field.begin() + 12, 0xff);
  EXPECT_FALSE(Share::from_bytes(out_of_field));
}

}  // namespace
}  // namespace ppreid::secagg
