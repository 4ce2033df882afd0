#include "core/reid/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/util/error.h"

namespace ppreid::reid {
namespace {

// ---------------------------------------------------------------------------------------------
// Zip directory check. PyTorchStreamReader (miniz) allocates a record's declared uncompressed
// size before inflating it; miniz already ties a stored record's size to the file size, but a
// crafted deflated record could claim gigabytes. torch.save never compresses, so the check
// below costs nothing on real files and bounds every later allocation by the file size.

constexpr uint32_t kEocdSignature = 0x06054b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint32_t kZip64EocdSignature = 0x06064b50;
constexpr uint32_t kCentralSignature = 0x02014b50;
constexpr uint64_t kDeflateMaxRatio = 1032;  // deflate cannot expand data by more than this

uint64_t le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct ZipSummary {
  uint64_t uncompressed_bytes = 0;  // sum over all records: the data the archive can yield
};

class ZipScanner {
 public:
  ZipScanner(const std::filesystem::path& file, std::string where, uint64_t file_size)
      : in_(file, std::ios::binary), where_(std::move(where)), file_size_(file_size) {
    if (!in_) throw Error(where_ + ": cannot open the file for reading; check its permissions");
  }

  ZipSummary scan() {
    // The end-of-central-directory record sits in the last 22 + 65535 (comment) bytes.
    const uint64_t tail_size = std::min<uint64_t>(file_size_, 22 + 65535);
    std::vector<unsigned char> tail = read(file_size_ - tail_size, tail_size);
    int64_t eocd = -1;
    for (int64_t i = static_cast<int64_t>(tail_size) - 22; i >= 0; --i) {
      if (le(&tail[i], 4) == kEocdSignature) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) corrupt("it has no zip end-of-central-directory record");
    const unsigned char* e = &tail[eocd];
    uint64_t entries = le(e + 10, 2);
    uint64_t dir_size = le(e + 12, 4);
    uint64_t dir_offset = le(e + 16, 4);
    if (entries == 0xFFFF || dir_size == 0xFFFFFFFF || dir_offset == 0xFFFFFFFF) {
      const uint64_t eocd_pos = file_size_ - tail_size + eocd;
      if (eocd_pos < 20) corrupt("its zip64 locator is missing");
      std::vector<unsigned char> loc = read(eocd_pos - 20, 20);
      if (le(loc.data(), 4) != kZip64LocatorSignature) corrupt("its zip64 locator is missing");
      std::vector<unsigned char> z = read(le(loc.data() + 8, 8), 56);
      if (le(z.data(), 4) != kZip64EocdSignature) corrupt("its zip64 directory record is bad");
      entries = le(z.data() + 32, 8);
      dir_size = le(z.data() + 40, 8);
      dir_offset = le(z.data() + 48, 8);
    }
    if (dir_offset > file_size_ || dir_size > file_size_ - dir_offset)
      corrupt("its zip central directory lies outside the file");
    if (entries > dir_size / 46) corrupt("its zip central directory is too short");
    std::vector<unsigned char> dir = read(dir_offset, dir_size);
    ZipSummary summary;
    uint64_t pos = 0;
    for (uint64_t n = 0; n < entries; ++n) {
      if (dir_size - pos < 46 || le(&dir[pos], 4) != kCentralSignature)
        corrupt("its zip central directory is damaged");
      const unsigned char* h = &dir[pos];
      const uint64_t method = le(h + 10, 2);
      uint64_t compressed = le(h + 20, 4);
      uint64_t uncompressed = le(h + 24, 4);
      const uint64_t name_len = le(h + 28, 2);
      const uint64_t extra_len = le(h + 30, 2);
      const uint64_t comment_len = le(h + 32, 2);
      if (dir_size - pos - 46 < name_len + extra_len + comment_len)
        corrupt("its zip central directory is damaged");
      if (compressed == 0xFFFFFFFF || uncompressed == 0xFFFFFFFF)
        zip64_sizes(h + 46 + name_len, extra_len, uncompressed, compressed);
      const std::string name(reinterpret_cast<const char*>(h + 46), name_len);
      if (compressed > file_size_) corrupt("zip record '" + name + "' is larger than the file");
      if (method == 0 && uncompressed != compressed)
        corrupt("zip record '" + name + "' has inconsistent sizes");
      if (method == 8 && uncompressed / kDeflateMaxRatio > compressed)
        corrupt("zip record '" + name + "' claims an impossible compression ratio");
      if (method != 0 && method != 8)
        throw Error(where_ + ": zip record '" + name + "' uses compression method " +
                    std::to_string(method) +
                    ", which PyTorch never writes; re-save the file "
                    "with torch.save(obj, path)");
      summary.uncompressed_bytes += uncompressed;
      pos += 46 + name_len + extra_len + comment_len;
    }
    return summary;
  }

 private:
  // A zip64 extra field lists the 64-bit sizes in this order, each only when its 32-bit
  // field is saturated.
  void zip64_sizes(const unsigned char* extra, uint64_t extra_len, uint64_t& uncompressed,
                   uint64_t& compressed) {
    uint64_t at = 0;
    while (extra_len - at >= 4) {
      const uint64_t id = le(extra + at, 2);
      const uint64_t len = le(extra + at + 2, 2);
      if (extra_len - at - 4 < len) break;
      if (id == 0x0001) {
        uint64_t field = at + 4;
        const uint64_t end = field + len;
        if (uncompressed == 0xFFFFFFFF && end - field >= 8) {
          uncompressed = le(extra + field, 8);
          field += 8;
        }
        if (compressed == 0xFFFFFFFF && end - field >= 8) compressed = le(extra + field, 8);
        return;
      }
      at += 4 + len;
    }
    corrupt("a zip64 record has no 64-bit sizes");
  }

  std::vector<unsigned char> read(uint64_t offset, uint64_t n) {
    if (offset > file_size_ || n > file_size_ - offset)
      corrupt("a zip structure points past the end of the file");
    std::vector<unsigned char> buf(n);
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(n));
    if (!in_) corrupt("reading it failed");
    return buf;
  }

  [[noreturn]] void corrupt(const std::string& what) {
    throw Error(where_ + " is not a readable torch.save zip archive: " + what +
                "; the file is truncated or corrupted: download or save it again");
  }

  std::ifstream in_;
  std::string where_;
  uint64_t file_size_;
};

// ---------------------------------------------------------------------------------------------
// Pickle values. Containers are shared (BINGET hands out the same object, which later opcodes
// may still fill), hence shared_ptr. Only what a state_dict file needs is modelled; anything
// else a checkpoint may pickle (argparse.Namespace, numpy scalars) becomes an opaque object that
// is harmless unless it is asked to be a tensor.

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

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  explicit Value(Kind k) : kind(k) {}
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;
  ~Value();

  Kind kind;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  std::string text;  // a string; "module.name" of a global or of an object's class; storage key
  std::vector<ValuePtr> items;                         // tuple, list
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // dict, in insertion order
  std::unordered_map<std::string, size_t> index;       // dict: string key -> entries position
  torch::Tensor tensor;                                // tensor; storage as a 1-D tensor
};

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

// dict[key] = value with Python's semantics: a repeated key keeps its first position.
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

// ---------------------------------------------------------------------------------------------
// Storages: the zip records data/<key>, loaded once each and shared by the tensors viewing them.

struct StorageType {
  const char* name;
  c10::ScalarType dtype;
};

// The storage classes torch.save names in persistent ids (torch.<Name>, or torch.cuda.<Name>
// in files saved from the GPU by torch < 1.12).
constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", c10::kFloat},
    {"DoubleStorage", c10::kDouble},
    {"HalfStorage", c10::kHalf},
    {"BFloat16Storage", c10::kBFloat16},
    {"ComplexFloatStorage", c10::kComplexFloat},
    {"ComplexDoubleStorage", c10::kComplexDouble},
    {"LongStorage", c10::kLong},
    {"IntStorage", c10::kInt},
    {"ShortStorage", c10::kShort},
    {"CharStorage", c10::kChar},
    {"ByteStorage", c10::kByte},
    {"BoolStorage", c10::kBool},
    {"UntypedStorage", c10::kByte},  // torch >= 2 saving a bare untyped storage: bytes
};

class StorageSource {
 public:
  StorageSource(caffe2::serialize::PyTorchStreamReader& reader, const std::string& where,
                uint64_t budget_bytes)
      : reader_(reader), where_(where), budget_bytes_(budget_bytes) {}

  torch::Tensor get(const std::string& key, c10::ScalarType dtype, int64_t numel) {
    auto cached = cache_.find(key);
    if (cached != cache_.end()) {
      if (cached->second.scalar_type() != dtype || cached->second.numel() != numel)
        throw Error(where_ + ": storage '" + key +
                    "' is referenced with two different types "
                    "or sizes; the file is corrupted: save it again");
      return cached->second;
    }
    const std::string record = "data/" + key;
    if (!reader_.hasRecord(record))
      throw Error(where_ + ": storage '" + key + "' has no record '" + record +
                  "' in the archive; the file is truncated or was not written by torch.save");
    auto [data, bytes] = reader_.getRecord(record);
    const auto item = static_cast<int64_t>(c10::elementSize(dtype));
    if (numel < 0 || numel > static_cast<int64_t>(bytes) / item)
      throw Error(where_ + ": storage '" + key + "' declares " + std::to_string(numel) + " " +
                  c10::toString(dtype) + " elements but its record holds " + std::to_string(bytes) +
                  " bytes; the file is corrupted: save it again");
    torch::Tensor storage;
    if (numel == 0) {
      storage = torch::empty({0}, torch::TensorOptions().dtype(dtype));
    } else {
      if (dtype == c10::kBool) {
        // A bool byte other than 0/1 is undefined behaviour in every kernel that reads it.
        const auto* p = static_cast<const unsigned char*>(data.get());
        for (int64_t i = 0; i < numel; ++i)
          if (p[i] > 1)
            throw Error(where_ + ": bool storage '" + key +
                        "' holds a byte that is neither 0 "
                        "nor 1; the file is corrupted: save it again");
      }
      auto owner = std::make_shared<at::DataPtr>(std::move(data));
      storage = torch::from_blob(
          owner->get(), {numel}, [owner](void*) {}, torch::TensorOptions().dtype(dtype));
    }
    cache_.emplace(key, storage);
    return storage;
  }

  // Counts the bytes of a tensor about to be copied out of a storage. Views may overlap, so a
  // few hundred bytes of pickle could otherwise copy one large storage thousands of times.
  void charge(const std::string& key, uint64_t bytes) {
    if (bytes > budget_bytes_ - spent_bytes_)
      throw Error(where_ + ": the tensors viewing storage '" + key + "' would copy more than " +
                  std::to_string(budget_bytes_) +
                  " bytes out of a file this size; the file is "
                  "crafted or corrupted");
    spent_bytes_ += bytes;
  }

 private:
  caffe2::serialize::PyTorchStreamReader& reader_;
  const std::string& where_;
  std::unordered_map<std::string, torch::Tensor> cache_;
  uint64_t budget_bytes_;
  uint64_t spent_bytes_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The unpickler: a stack machine over the opcodes of pickle protocols 2-5 that torch.save
// emits. It resolves globals by name against a fixed list and never imports or calls anything.

class Unpickler {
 public:
  Unpickler(const std::string& where, const unsigned char* data, size_t size,
            StorageSource& storages)
      : where_(where), data_(data), size_(size), storages_(storages) {}

  ValuePtr load() {
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

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(where_ + ": data.pkl offset " + std::to_string(op_pos_) + ": " + what);
  }

  const unsigned char* take(uint64_t n) {
    if (n > size_ - pos_) fail("data.pkl ends inside an opcode (truncated)");
    const unsigned char* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint64_t u8() { return take(1)[0]; }
  uint64_t u16() { return le(take(2), 2); }
  uint64_t u32() { return le(take(4), 4); }
  uint64_t u64() { return le(take(8), 8); }

  std::string line() {
    const auto* begin = reinterpret_cast<const char*>(data_ + pos_);
    const void* nl = std::memchr(begin, '\n', size_ - pos_);
    if (nl == nullptr) fail("GLOBAL without a newline (truncated)");
    std::string out(begin, static_cast<const char*>(nl));
    pos_ += out.size() + 1;
    return out;
  }

  void push(ValuePtr v) { stack_.push_back(std::move(v)); }

  // Pops never reach below the innermost MARK: that keeps pop_mark() well-defined.
  ValuePtr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      fail("stack underflow");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }

  const ValuePtr& top() const {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      fail("stack underflow");
    return stack_.back();
  }

  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const size_t mark = marks_.back();
    marks_.pop_back();
    if (mark > stack_.size()) fail("stack underflow");
    std::vector<ValuePtr> items(std::make_move_iterator(stack_.begin() + mark),
                                std::make_move_iterator(stack_.end()));
    stack_.resize(mark);
    return items;
  }

  Value* list_at_top() const {
    Value* v = top().get();
    if (v->kind != Kind::kList) fail(std::string("APPEND to ") + kind_name(v->kind));
    return v;
  }

  Value* dict_at_top() const {
    Value* v = top().get();
    if (v->kind != Kind::kDict) fail(std::string("SETITEM on ") + kind_name(v->kind));
    return v;
  }

  void set_items(Value& dict, std::vector<ValuePtr>& items) {
    if (items.size() % 2 != 0) fail("odd number of items for a dict");
    for (size_t i = 0; i < items.size(); i += 2)
      dict_set(dict, std::move(items[i]), std::move(items[i + 1]));
  }

  ValuePtr memo_get(uint64_t id) const {
    auto it = memo_.find(id);
    if (it == memo_.end()) fail("memo entry " + std::to_string(id) + " was never stored");
    return it->second;
  }

  void push_text(uint64_t n) {
    const unsigned char* p = take(n);
    push(make_text(Kind::kString, std::string(reinterpret_cast<const char*>(p), n)));
  }

  // LONG1: a little-endian two's-complement integer of n bytes. Wider than 64 bits cannot be a
  // size or an offset, so it stays opaque.
  void long1() {
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

  ValuePtr opaque(const ValuePtr& cls) const {
    return make_text(Kind::kObject, cls->kind == Kind::kGlobal ? cls->text : "object");
  }

  void reduce() {
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
  void persistent_load() {
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

  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& a, const std::string& fn) {
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

// ---------------------------------------------------------------------------------------------

std::string describe(const Value& v) {
  if (v.kind == Kind::kObject) return "a Python object (" + v.text + ")";
  return kind_name(v.kind);
}

// The tensors of `dict`, or an Error naming the first entry that is not one. `path` is how the
// dict is reached ("" for the top level, "entry 'state_dict' -> ").
NamedTensors collect_tensors(const Value& dict, const std::string& where, const std::string& path,
                             const std::string& advice) {
  NamedTensors out;
  out.reserve(dict.entries.size());
  std::unordered_set<const c10::TensorImpl*> seen;
  for (const auto& [key, value] : dict.entries) {
    if (key->kind != Kind::kString)
      throw Error(where + ": " + path + "a key is " + describe(*key) +
                  ", not a string: this is not a state_dict");
    if (value->kind != Kind::kTensor)
      throw Error(where + ": " + path + "entry '" + key->text + "' is " + describe(*value) +
                  ", not a tensor" + advice);
    torch::Tensor t = value->tensor;
    // One tensor pickled under two keys (tied weights) would alias in memory: copy it.
    if (!seen.insert(t.unsafeGetTensorImpl()).second) t = t.clone();
    out.emplace_back(key->text, std::move(t));
  }
  return out;
}

NamedTensors select_state_dict(const Value& root, const std::string& where) {
  if (root.kind != Kind::kDict)
    throw Error(where + " holds " + describe(root) +
                ", not a dict of tensors; save "
                "model.state_dict() with torch.save(model.state_dict(), path)");
  const bool all_tensors = std::all_of(root.entries.begin(), root.entries.end(), [](const auto& e) {
    return e.second->kind == Kind::kTensor;
  });
  if (all_tensors) return collect_tensors(root, where, "", "");
  for (const char* wrapper : {"state_dict", "model"}) {
    const Value* inner = dict_get(root, wrapper);
    if (inner == nullptr) continue;
    const std::string path = std::string("entry '") + wrapper + "' -> ";
    if (inner->kind != Kind::kDict)
      throw Error(where + ": entry '" + wrapper + "' is " + describe(*inner) +
                  ", not a dict of tensors; save model.state_dict() there");
    return collect_tensors(*inner, where, path, "; only tensors can be loaded into a model");
  }
  return collect_tensors(root, where, "",
                         ", and there is no 'state_dict' or 'model' entry holding the tensors; "
                         "save model.state_dict() or a dict of tensors");
}

}  // namespace

NamedTensors read_torch_state_dict(const std::filesystem::path& file) {
  std::string where = "'";  // appended, not concatenated: dodges a GCC 12 -O3 false warning
  where.append(file.string()).append("'");
  if constexpr (std::endian::native != std::endian::little) {
    throw Error(where + ": reading torch.save files needs a little-endian machine");
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    throw Error(where + " does not exist or is not a regular file; check the path");
  const uint64_t file_size = std::filesystem::file_size(file, ec);
  if (ec) throw Error(where + ": cannot read its size (" + ec.message() + ")");

  unsigned char magic[4] = {0, 0, 0, 0};
  {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(where + ": cannot open the file for reading; check its permissions");
    in.read(reinterpret_cast<char*>(magic), 4);
  }
  if (std::memcmp(magic, "PK\x03\x04", 4) != 0) {
    // The legacy format is a bare pickle stream: protocol 2 starts with 0x80 0x02.
    if (magic[0] == 0x80)
      throw Error(where +
                  " is in the legacy (pre-1.6) torch.save format, which ppreid cannot "
                  "read; re-save it with torch.save(obj, path) from torch >= 1.6");
    throw Error(where +
                " is not a torch.save file (no zip header); expected the output of "
                "torch.save(model.state_dict(), path)");
  }
  const ZipSummary zip = ZipScanner(file, where, file_size).scan();

  try {
    caffe2::serialize::PyTorchStreamReader reader(file.string());
    if (!reader.hasRecord("data.pkl"))
      throw Error(where +
                  " is a zip archive without data.pkl; it was not written by "
                  "torch.save: save the state_dict with torch.save(model.state_dict(), path)");
    if (reader.hasRecord("byteorder")) {
      auto [order, order_size] = reader.getRecord("byteorder");
      const std::string text(static_cast<const char*>(order.get()), order_size);
      if (text != "little")
        throw Error(where + " was saved on a '" + text +
                    "'-endian machine; re-save it on a "
                    "little-endian one");
    }
    auto [pickle, pickle_size] = reader.getRecord("data.pkl");
    // Copies may reach the bytes the archive holds plus views of them; anything beyond a few
    // multiples is a crafted file.
    StorageSource storages(reader, where, 4 * zip.uncompressed_bytes + (uint64_t{64} << 20));
    Unpickler unpickler(where, static_cast<const unsigned char*>(pickle.get()), pickle_size,
                        storages);
    ValuePtr root = unpickler.load();
    return select_state_dict(*root, where);
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    what = what.substr(0, what.find('\n'));
    throw Error(where + ": PyTorch cannot read the zip archive (" + what +
                "); the file is truncated or corrupted: download or save it again");
  }
}

}  // namespace ppreid::reid
