#include "core/reid/pickle/value.h"

namespace ppreid::reid::pickle {

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "a bool";
    case Kind::kInt:
      return "an int";
    case Kind::kFloat:
      return "a float";
    case Kind::kString:
      return "a string";
    case Kind::kTuple:
      return "a tuple";
    case Kind::kList:
      return "a list";
    case Kind::kDict:
      return "a dict";
    case Kind::kGlobal:
      return "a Python global";
    case Kind::kStorage:
      return "a storage";
    case Kind::kTensor:
      return "a tensor";
    case Kind::kObject:
      return "a Python object";
  }
  return "a value";
}

// A crafted pickle can nest a million tuples; the default recursive destruction of such a
// chain would overflow the stack, so children are released from a work list instead.
Value::~Value() {
  std::vector<ValuePtr> pending;
  auto adopt = [&pending](Value& v) {
    for (auto& child : v.items) pending.push_back(std::move(child));
    for (auto& [key, child] : v.entries) {
      pending.push_back(std::move(key));
      pending.push_back(std::move(child));
    }
    v.items.clear();
    v.entries.clear();
  };
  adopt(*this);
  while (!pending.empty()) {
    ValuePtr next = std::move(pending.back());
    pending.pop_back();
    if (next && next.use_count() == 1) adopt(*next);  // `next` dies childless below
  }
}

ValuePtr make(Kind kind) { return std::make_shared<Value>(kind); }

ValuePtr make_int(int64_t v) {
  ValuePtr out = make(Kind::kInt);
  out->integer = v;
  return out;
}

ValuePtr make_text(Kind kind, std::string text) {
  ValuePtr out = make(kind);
  out->text = std::move(text);
  return out;
}

void dict_set(Value& dict, ValuePtr key, ValuePtr value) {
  if (key->kind == Kind::kString) {
    auto [it, inserted] = dict.index.try_emplace(key->text, dict.entries.size());
    if (!inserted) {
      dict.entries[it->second].second = std::move(value);
      return;
    }
  }
  dict.entries.emplace_back(std::move(key), std::move(value));
}

const Value* dict_get(const Value& dict, const std::string& key) {
  auto it = dict.index.find(key);
  return it == dict.index.end() ? nullptr : dict.entries[it->second].second.get();
}

std::string describe(const Value& v) {
  if (v.kind == Kind::kObject) return "a Python object (" + v.text + ")";
  return kind_name(v.kind);
}

}  // namespace ppreid::reid::pickle
