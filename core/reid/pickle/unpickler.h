#pragma once

// The unpickler: a stack machine over the opcodes of pickle protocols 2-5 that torch.save
// emits. It resolves globals by name against a fixed list and never imports or calls anything.

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/reid/pickle/storage_source.h"
#include "core/reid/pickle/value.h"

namespace ppreid::reid::pickle {

class Unpickler {
 public:
  Unpickler(const std::string& where, const unsigned char* data, size_t size,
            StorageSource& storages)
      : where_(where), data_(data), size_(size), storages_(storages) {}

  // Runs data.pkl up to its STOP opcode and returns the object left on the stack. Throws
  // ppreid::Error naming the offset of the opcode that failed.
  ValuePtr load();

 private:
  [[noreturn]] void fail(const std::string& what) const;

  const unsigned char* take(uint64_t n);
  uint64_t u8();
  uint64_t u16();
  uint64_t u32();
  uint64_t u64();
  std::string line();

  void push(ValuePtr v);
  ValuePtr pop();
  const ValuePtr& top() const;
  std::vector<ValuePtr> pop_mark();
  Value* list_at_top() const;
  Value* dict_at_top() const;
  void set_items(Value& dict, std::vector<ValuePtr>& items);
  ValuePtr memo_get(uint64_t id) const;
  void push_text(uint64_t n);
  void long1();
  ValuePtr opaque(const ValuePtr& cls) const;
  void reduce();
  void persistent_load();
  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& a, const std::string& fn);

  const std::string& where_;
  const unsigned char* data_;
  size_t size_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
  StorageSource& storages_;
};

}  // namespace ppreid::reid::pickle
