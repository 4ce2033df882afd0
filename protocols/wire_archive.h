#pragma once

// Cereal archives of the wire header (internal to protocols/; codec.h is the public API).
//
// Little-endian, no padding, no type tags: arithmetic values as their bytes, sizes (cereal's
// SizeTag) as uint64. The input archive reads from a byte span that it never leaves, and checks
// every size BEFORE a container is resized to it: a count may not exceed the bytes left in the
// frame (each element takes at least one byte), so nothing is ever allocated that the frame does
// not contain. Errors are DecodeError naming the field path built from the NameValuePairs.

#include <cereal/cereal.hpp>

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "protocols/decode_error.h"

namespace ppreid::proto {

static_assert(std::endian::native == std::endian::little,
              "wire_archive writes values as they are in memory; the wire is little-endian");

class WireOutputArchive
    : public cereal::OutputArchive<WireOutputArchive, cereal::AllowEmptyClassElision> {
 public:
  explicit WireOutputArchive(std::string& out)
      : cereal::OutputArchive<WireOutputArchive, cereal::AllowEmptyClassElision>(this),
        out_(out) {}
  void write(const void* data, std::size_t size) {
    out_.append(static_cast<const char*>(data), size);
  }

 private:
  std::string& out_;
};

class WireInputArchive
    : public cereal::InputArchive<WireInputArchive, cereal::AllowEmptyClassElision> {
 public:
  // `what` names the frame in errors ("Task header").
  WireInputArchive(std::span<const std::uint8_t> bytes, std::string what)
      : cereal::InputArchive<WireInputArchive, cereal::AllowEmptyClassElision>(this),
        bytes_(bytes),
        what_(std::move(what)) {}

  std::size_t remaining() const { return bytes_.size() - pos_; }
  void set_what(std::string what) { what_ = std::move(what); }

  void read(void* data, std::size_t size) {
    if (size > remaining())
      fail(DecodeFailure::kTruncated, "needs " + std::to_string(size) + " bytes but only " +
                                          std::to_string(remaining()) + " are left");
    if (size > 0) std::memcpy(data, bytes_.data() + pos_, size);
    pos_ += size;
  }

  // A container size: at most the bytes left (every element takes at least one), and at most
  // `max_count` when the field has its own bound.
  void check_count(std::uint64_t count, std::uint64_t max_count = UINT64_MAX) {
    if (count > max_count)
      fail(DecodeFailure::kTooLarge, "count " + std::to_string(count) + " exceeds the limit of " +
                                         std::to_string(max_count));
    if (count > remaining())
      fail(DecodeFailure::kTruncated, "count " + std::to_string(count) + " exceeds the " +
                                          std::to_string(remaining()) +
                                          " bytes left in the frame");
  }

  [[noreturn]] void fail(DecodeFailure failure, const std::string& detail) const {
    std::string message = what_;
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      message += i == 0 ? ", field '" : ".";
      message += fields_[i];
    }
    if (!fields_.empty()) message += "'";
    message += ": ";
    message += detail;
    throw DecodeError(failure, message);
  }

  // The field path in error messages follows the NameValuePairs being loaded.
  struct FieldScope {
    WireInputArchive& ar;
    FieldScope(WireInputArchive& a, const char* name) : ar(a) { ar.fields_.push_back(name); }
    ~FieldScope() { ar.fields_.pop_back(); }
  };

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
  std::string what_;
  std::vector<const char*> fields_;
};

// Arithmetic values.
template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_SAVE_FUNCTION_NAME(WireOutputArchive& ar,
                                                                    const T& t) {
  static_assert(!std::is_floating_point_v<T> || std::numeric_limits<T>::is_iec559);
  ar.write(std::addressof(t), sizeof t);
}

template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_LOAD_FUNCTION_NAME(WireInputArchive& ar, T& t) {
  if constexpr (std::is_same_v<T, bool>) {
    std::uint8_t byte = 0;
    ar.read(&byte, 1);
    if (byte > 1)
      ar.fail(DecodeFailure::kInvalidField, "a bool must be 0 or 1, not " + std::to_string(byte));
    t = byte == 1;
  } else {
    ar.read(std::addressof(t), sizeof t);
  }
}

// Name-value pairs: the name is not written; it names the field in errors.
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(WireOutputArchive& ar, const cereal::NameValuePair<T>& t) {
  ar(t.value);
}

template <class T>
void CEREAL_LOAD_FUNCTION_NAME(WireInputArchive& ar, cereal::NameValuePair<T>& t) {
  WireInputArchive::FieldScope scope(ar, t.name);
  ar(t.value);
}

// Container sizes: uint64, checked against the bytes left before anything is allocated.
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(WireOutputArchive& ar, const cereal::SizeTag<T>& t) {
  ar(static_cast<std::uint64_t>(t.size));
}

template <class T>
void CEREAL_LOAD_FUNCTION_NAME(WireInputArchive& ar, cereal::SizeTag<T>& t) {
  std::uint64_t size = 0;
  ar(size);
  ar.check_count(size);
  t.size = static_cast<std::remove_reference_t<T>>(size);
}

// Raw arrays of arithmetic values (strings, std::vector<int64_t>...).
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(WireOutputArchive& ar, const cereal::BinaryData<T>& bd) {
  ar.write(bd.data, static_cast<std::size_t>(bd.size));
}

template <class T>
void CEREAL_LOAD_FUNCTION_NAME(WireInputArchive& ar, cereal::BinaryData<T>& bd) {
  ar.read(bd.data, static_cast<std::size_t>(bd.size));
}

}  // namespace ppreid::proto

CEREAL_REGISTER_ARCHIVE(ppreid::proto::WireOutputArchive)
CEREAL_REGISTER_ARCHIVE(ppreid::proto::WireInputArchive)
CEREAL_SETUP_ARCHIVE_TRAITS(ppreid::proto::WireInputArchive, ppreid::proto::WireOutputArchive)
