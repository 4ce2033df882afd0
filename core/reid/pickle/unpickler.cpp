#include "core/reid/pickle/unpickler.h"

#include <torch/torch.h>

#include <bit>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <utility>

#include "core/reid/pickle/zip_check.h"
#include "core/util/error.h"

namespace ppreid::reid::pickle {

ValuePtr Unpickler::load() {
  for (;;) {
    op_pos_ = pos_;
    if (pos_ >= size_) fail("data.pkl ends before its STOP opcode (truncated)");
    const uint8_t op = data_[pos_++];
    switch (op) {
      case 0x80: {  // PROTO
        const uint8_t proto = u8();
        if (proto < 2 || proto > 5) fail("pickle protocol " + std::to_string(proto));
        break;
      }
      case 0x95:  // FRAME: a length hint only; the data follows inline
        u64();
        break;
      case '.': {  // STOP
        if (stack_.empty()) fail("STOP with an empty stack");
        return stack_.back();
      }
      case '(':  // MARK
        marks_.push_back(stack_.size());
        break;
      case '0':  // POP
        pop();
        break;
      case '1':  // POP_MARK
        pop_mark();
        break;
      case '2':  // DUP
        push(top());
        break;

      case 'N':
        push(make(Kind::kNone));
        break;
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        ValuePtr v = make(Kind::kBool);
        v->boolean = op == 0x88;
        push(std::move(v));
        break;
      }
      case 'J':  // BININT (signed)
        push(make_int(static_cast<int32_t>(u32())));
        break;
      case 'K':  // BININT1
        push(make_int(u8()));
        break;
      case 'M':  // BININT2
        push(make_int(u16()));
        break;
      case 0x8a:  // LONG1
        long1();
        break;
      case 'G': {  // BINFLOAT
        const unsigned char* p = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];  // big-endian
        ValuePtr v = make(Kind::kFloat);
        v->real = std::bit_cast<double>(bits);
        push(std::move(v));
        break;
      }

      case 'X':  // BINUNICODE
        push_text(u32());
        break;
      case 0x8c:  // SHORT_BINUNICODE
        push_text(u8());
        break;
      case 0x8d:  // BINUNICODE8
        push_text(u64());
        break;
      case 'T': {  // BINSTRING: a signed length
        const auto n = static_cast<int32_t>(u32());
        if (n < 0) fail("negative BINSTRING length");
        push_text(static_cast<uint64_t>(n));
        break;
      }
      case 'U':  // SHORT_BINSTRING
        push_text(u8());
        break;
      case 'B':  // BINBYTES
        push_text(u32());
        break;
      case 'C':  // SHORT_BINBYTES
        push_text(u8());
        break;
      case 0x8e:  // BINBYTES8
        push_text(u64());
        break;

      case ')':  // EMPTY_TUPLE
        push(make(Kind::kTuple));
        break;
      case 't': {  // TUPLE
        ValuePtr v = make(Kind::kTuple);
        v->items = pop_mark();
        push(std::move(v));
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
        const size_t n = op - 0x84;
        if (stack_.size() < n || (!marks_.empty() && stack_.size() - n < marks_.back()))
          fail("stack underflow");
        ValuePtr v = make(Kind::kTuple);
        v->items.assign(std::make_move_iterator(stack_.end() - static_cast<ptrdiff_t>(n)),
                        std::make_move_iterator(stack_.end()));
        stack_.resize(stack_.size() - n);
        push(std::move(v));
        break;
      }
      case ']':  // EMPTY_LIST
        push(make(Kind::kList));
        break;
      case 'l': {  // LIST
        ValuePtr v = make(Kind::kList);
        v->items = pop_mark();
        push(std::move(v));
        break;
      }
      case 'a': {  // APPEND
        ValuePtr item = pop();
        list_at_top()->items.push_back(std::move(item));
        break;
      }
      case 'e': {  // APPENDS
        std::vector<ValuePtr> items = pop_mark();
        Value* list = list_at_top();
        for (auto& item : items) list->items.push_back(std::move(item));
        break;
      }
      case '}':  // EMPTY_DICT
        push(make(Kind::kDict));
        break;
      case 'd': {  // DICT
        std::vector<ValuePtr> items = pop_mark();
        ValuePtr dict = make(Kind::kDict);
        set_items(*dict, items);
        push(std::move(dict));
        break;
      }
      case 's': {  // SETITEM
        ValuePtr value = pop();
        ValuePtr key = pop();
        dict_set(*dict_at_top(), std::move(key), std::move(value));
        break;
      }
      case 'u': {  // SETITEMS
        std::vector<ValuePtr> items = pop_mark();
        set_items(*dict_at_top(), items);
        break;
      }

      case 'q':  // BINPUT
        memo_[u8()] = top();
        break;
      case 'r':  // LONG_BINPUT
        memo_[u32()] = top();
        break;
      case 0x94: {  // MEMOIZE: the next free index
        const auto id = static_cast<uint64_t>(memo_.size());
        memo_[id] = top();
        break;
      }
      case 'h':  // BINGET
        push(memo_get(u8()));
        break;
      case 'j':  // LONG_BINGET
        push(memo_get(u32()));
        break;

      case 'c': {  // GLOBAL: "module\nname\n"
        std::string module = line();
        std::string name = line();
        push(make_text(Kind::kGlobal, module + "." + name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        ValuePtr name = pop();
        ValuePtr module = pop();
        if (module->kind != Kind::kString || name->kind != Kind::kString)
          fail("STACK_GLOBAL needs two strings");
        push(make_text(Kind::kGlobal, module->text + "." + name->text));
        break;
      }
      case 'R':  // REDUCE
        reduce();
        break;
      case 'b': {  // BUILD
        pop();     // the state: an OrderedDict's _metadata, or an ignored object's attributes
        const Kind kind = top()->kind;
        if (kind != Kind::kDict && kind != Kind::kObject)
          fail(std::string("BUILD on ") + kind_name(kind));
        break;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args), kept opaque
        pop();
        push(opaque(pop()));
        break;
      }
      case 0x92: {  // NEWOBJ_EX
        pop();
        pop();
        push(opaque(pop()));
        break;
      }
      case 'Q':  // BINPERSID
        persistent_load();
        break;

      default: {
        std::string shown;
        if (std::isprint(op)) shown = std::string(" ('") + static_cast<char>(op) + "')";
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unsupported pickle opcode ") + hex + shown +
             "; only the opcodes torch.save writes are understood: re-save the object with "
             "torch.save(model.state_dict(), path)");
      }
    }
  }
}

void Unpickler::fail(const std::string& what) const {
  throw Error(where_ + ": data.pkl offset " + std::to_string(op_pos_) + ": " + what);
}

const unsigned char* Unpickler::take(uint64_t n) {
  if (n > size_ - pos_) fail("data.pkl ends inside an opcode (truncated)");
  const unsigned char* p = data_ + pos_;
  pos_ += n;
  return p;
}

uint64_t Unpickler::u8() { return take(1)[0]; }
uint64_t Unpickler::u16() { return le(take(2), 2); }
uint64_t Unpickler::u32() { return le(take(4), 4); }
uint64_t Unpickler::u64() { return le(take(8), 8); }

std::string Unpickler::line() {
  const auto* begin = reinterpret_cast<const char*>(data_ + pos_);
  const void* nl = std::memchr(begin, '\n', size_ - pos_);
  if (nl == nullptr) fail("GLOBAL without a newline (truncated)");
  std::string out(begin, static_cast<const char*>(nl));
  pos_ += out.size() + 1;
  return out;
}

void Unpickler::push(ValuePtr v) { stack_.push_back(std::move(v)); }

// Pops never reach below the innermost MARK: that keeps pop_mark() well-defined.
ValuePtr Unpickler::pop() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
    fail("stack underflow");
  ValuePtr v = std::move(stack_.back());
  stack_.pop_back();
  return v;
}

const ValuePtr& Unpickler::top() const {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
    fail("stack underflow");
  return stack_.back();
}

std::vector<ValuePtr> Unpickler::pop_mark() {
  if (marks_.empty()) fail("no MARK to pop to");
  const size_t mark = marks_.back();
  marks_.pop_back();
  if (mark > stack_.size()) fail("stack underflow");
  std::vector<ValuePtr> items(std::make_move_iterator(stack_.begin() + mark),
                              std::make_move_iterator(stack_.end()));
  stack_.resize(mark);
  return items;
}

Value* Unpickler::list_at_top() const {
  Value* v = top().get();
  if (v->kind != Kind::kList) fail(std::string("APPEND to ") + kind_name(v->kind));
  return v;
}

Value* Unpickler::dict_at_top() const {
  Value* v = top().get();
  if (v->kind != Kind::kDict) fail(std::string("SETITEM on ") + kind_name(v->kind));
  return v;
}

void Unpickler::set_items(Value& dict, std::vector<ValuePtr>& items) {
  if (items.size() % 2 != 0) fail("odd number of items for a dict");
  for (size_t i = 0; i < items.size(); i += 2)
    dict_set(dict, std::move(items[i]), std::move(items[i + 1]));
}

ValuePtr Unpickler::memo_get(uint64_t id) const {
  auto it = memo_.find(id);
  if (it == memo_.end()) fail("memo entry " + std::to_string(id) + " was never stored");
  return it->second;
}

void Unpickler::push_text(uint64_t n) {
  const unsigned char* p = take(n);
  push(make_text(Kind::kString, std::string(reinterpret_cast<const char*>(p), n)));
}

// LONG1: a little-endian two's-complement integer of n bytes. Wider than 64 bits cannot be a
// size or an offset, so it stays opaque.
void Unpickler::long1() {
  const uint64_t n = u8();
  const unsigned char* p = take(n);
  if (n > 8) {
    push(make_text(Kind::kObject, "int (wider than 64 bits)"));
    return;
  }
  uint64_t bits = n == 0 ? 0 : le(p, static_cast<int>(n));
  if (n > 0 && n < 8 && (p[n - 1] & 0x80)) bits |= ~uint64_t{0} << (8 * n);  // sign-extend
  push(make_int(static_cast<int64_t>(bits)));
}

ValuePtr Unpickler::opaque(const ValuePtr& cls) const {
  return make_text(Kind::kObject, cls->kind == Kind::kGlobal ? cls->text : "object");
}

void Unpickler::reduce() {
  ValuePtr args = pop();
  ValuePtr callable = pop();
  if (callable->kind != Kind::kGlobal)
    fail(std::string("REDUCE calls ") + kind_name(callable->kind) + ", not a global");
  if (args->kind != Kind::kTuple) fail("REDUCE arguments are not a tuple");
  const std::string& fn = callable->text;
  const std::vector<ValuePtr>& a = args->items;
  if (fn == "collections.OrderedDict" && a.empty()) {
    push(make(Kind::kDict));  // filled by SETITEMS; BUILD then sets _metadata (ignored)
  } else if (fn == "torch._utils._rebuild_tensor_v2" && (a.size() == 6 || a.size() == 7)) {
    push(rebuild_tensor(a, fn));  // (storage, offset, size, stride, requires_grad, hooks[, md])
  } else if (fn == "torch._utils._rebuild_tensor" && a.size() == 4) {
    push(rebuild_tensor(a, fn));  // (storage, offset, size, stride), before torch 1.0
  } else if ((fn == "torch._utils._rebuild_parameter" && a.size() == 3) ||
             (fn == "torch._utils._rebuild_parameter_with_state" && a.size() == 4)) {
    if (a[0]->kind != Kind::kTensor) fail(fn + " wraps " + kind_name(a[0]->kind));
    push(a[0]);  // (data, requires_grad, hooks[, state]): a Parameter is its data here
  } else if (fn == "torch.jit._pickle.restore_type_tag" && a.size() == 2) {
    push(a[0]);  // LibTorch's torch::pickle_save tags typed dicts: (dict, "Dict[str, Tensor]")
  } else {
    push(make_text(Kind::kObject, fn));  // fine unless it is where a tensor must be
  }
}

// ('storage', <storage class>, key, location, numel) -> the storage as a 1-D tensor.
void Unpickler::persistent_load() {
  ValuePtr pid = pop();
  const std::vector<ValuePtr>& f = pid->items;
  if (pid->kind != Kind::kTuple || f.size() != 5 || f[0]->kind != Kind::kString ||
      f[0]->text != "storage")
    fail("persistent id is not a ('storage', type, key, location, numel) tuple");
  if (f[1]->kind != Kind::kGlobal || f[2]->kind != Kind::kString || f[3]->kind != Kind::kString ||
      f[4]->kind != Kind::kInt)
    fail("persistent id fields have the wrong types");
  const std::string& type = f[1]->text;
  const std::string cls = type.substr(type.rfind('.') + 1);
  const std::string module =
      type.substr(0, type.rfind('.') == std::string::npos ? 0 : type.rfind('.'));
  const StorageType* found = nullptr;
  if (module == "torch" || module == "torch.cuda")
    for (const StorageType& st : kStorageTypes)
      if (cls == st.name) found = &st;
  if (found == nullptr)
    fail("unsupported storage type " + type + " for storage '" + f[2]->text +
         "' (quantized or another special type); supported: float, double, half, bfloat16, "
         "complex, int64/32/16/8, uint8 and bool storages");
  ValuePtr storage = make_text(Kind::kStorage, f[2]->text);
  storage->tensor = storages_.get(f[2]->text, found->dtype, f[4]->integer);
  push(std::move(storage));
}

ValuePtr Unpickler::rebuild_tensor(const std::vector<ValuePtr>& a, const std::string& fn) {
  if (a[0]->kind != Kind::kStorage) fail(fn + " needs a storage, got " + kind_name(a[0]->kind));
  if (a[1]->kind != Kind::kInt || a[2]->kind != Kind::kTuple || a[3]->kind != Kind::kTuple)
    fail(fn + " needs (storage, int offset, size tuple, stride tuple)");
  const torch::Tensor& storage = a[0]->tensor;
  const std::string& key = a[0]->text;
  const std::vector<ValuePtr>& size_items = a[2]->items;
  const std::vector<ValuePtr>& stride_items = a[3]->items;
  if (size_items.size() != stride_items.size() || size_items.size() > 64)
    fail(fn + ": size and stride differ in length (or exceed 64 dimensions)");
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
  for (size_t d = 0; d < size_items.size(); ++d) {
    if (size_items[d]->kind != Kind::kInt || stride_items[d]->kind != Kind::kInt)
      fail(fn + ": size and stride must hold ints");
    sizes.push_back(size_items[d]->integer);
    strides.push_back(stride_items[d]->integer);
  }
  const int64_t offset = a[1]->integer;
  const int64_t storage_numel = storage.numel();
  auto bad = [&](const std::string& why) {
    fail("tensor on storage '" + key + "' (" + std::to_string(storage_numel) +
         " elements): " + why + "; the file is corrupted: save it again");
  };
  if (offset < 0 || offset > storage_numel) bad("storage offset out of range");
  // Checked arithmetic: sizes and strides come from the file.
  int64_t numel = 1;
  int64_t last = offset;  // index of the element furthest into the storage
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] < 0 || strides[d] < 0) bad("negative size or stride");
    if (__builtin_mul_overflow(numel, sizes[d], &numel)) bad("size overflows");
    int64_t reach = 0;
    if (sizes[d] > 0 && (__builtin_mul_overflow(sizes[d] - 1, strides[d], &reach) ||
                         __builtin_add_overflow(last, reach, &last)))
      bad("size x stride overflows");
  }
  const c10::ScalarType dtype = storage.scalar_type();
  ValuePtr out = make(Kind::kTensor);
  if (numel == 0) {
    out->tensor = torch::empty(sizes, torch::TensorOptions().dtype(dtype));
    return out;
  }
  if (last >= storage_numel) bad("size x stride reaches past the end of the storage");
  // Overlapping views (expand) never occur in a state_dict; refusing them caps each copy at
  // the storage size.
  if (numel > storage_numel) bad("more elements than its storage (an expanded view)");
  storages_.charge(key, static_cast<uint64_t>(numel) * c10::elementSize(dtype));
  out->tensor = storage.as_strided(sizes, strides, offset).clone(at::MemoryFormat::Contiguous);
  return out;
}

}  // namespace ppreid::reid::pickle
