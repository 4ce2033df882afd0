#pragma once

// Pickle values. Containers are shared (BINGET hands out the same object, which later opcodes
// may still fill), hence shared_ptr. Only what a state_dict file needs is modelled; anything
// else a checkpoint may pickle (argparse.Namespace, numpy scalars) becomes an opaque object that
// is harmless unless it is asked to be a tensor.

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ppreid::reid::pickle {

enum class Kind {
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kTuple,
  kList,
  kDict,
  kGlobal,
  kStorage,
  kTensor,
  kObject
};

// With its article, for messages: "an int", "a tuple".
const char* kind_name(Kind kind);

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  explicit Value(Kind k) : kind(k) {}
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;
  ~Value();  // iterative: see value.cpp

  Kind kind;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  std::string text;  // a string; "module.name" of a global or of an object's class; storage key
  std::vector<ValuePtr> items;                         // tuple, list
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // dict, in insertion order
  std::unordered_map<std::string, size_t> index;       // dict: string key -> entries position
  at::Tensor tensor;                                   // tensor; storage as a 1-D tensor
};

ValuePtr make(Kind kind);
ValuePtr make_int(int64_t v);
ValuePtr make_text(Kind kind, std::string text);

// dict[key] = value with Python's semantics: a repeated key keeps its first position.
void dict_set(Value& dict, ValuePtr key, ValuePtr value);

const Value* dict_get(const Value& dict, const std::string& key);

// For messages: kind_name(), with the class of an opaque object.
std::string describe(const Value& v);

}  // namespace ppreid::reid::pickle
