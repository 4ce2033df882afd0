#include "core/util/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/util/error.h"

namespace ppreid::util {
namespace fs = std::filesystem;
namespace {

void fsync_path(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) throw Error("cannot open '" + path.string() + "' to sync it: " + errno_text());
  // Directories on some filesystems refuse fsync; the rename is still atomic, so ignore that.
  if (::fsync(fd) != 0 && !directory) {
    std::string why = errno_text();
    ::close(fd);
    throw Error("cannot sync '" + path.string() + "' to disk: " + why);
  }
  ::close(fd);
}

fs::path temp_sibling(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  std::ostringstream name;
  name << "." << path.filename().string() << ".tmp." << ::getpid() << "."
       << std::hash<std::thread::id>{}(std::this_thread::get_id()) % 100000 << "."
       << counter++;
  return path.parent_path() / name.str();
}

}  // namespace

void write_atomic_with(const fs::path& path, const std::function<void(const fs::path&)>& write) {
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  if (!fs::is_directory(dir))
    throw Error("cannot write '" + path.string() + "': directory '" + dir.string() +
                "' does not exist");
  fs::path tmp = temp_sibling(dir / path.filename());
  try {
    write(tmp);
    fsync_path(tmp, false);
    fs::rename(tmp, path);
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
  fsync_path(dir, true);
}

void write_file_atomic(const fs::path& path, std::string_view contents) {
  write_atomic_with(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot create '" + tmp.string() + "': " + errno_text());
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) throw Error("cannot write '" + tmp.string() + "' (disk full?)");
  });
}

void sync_directory(const fs::path& dir) { fsync_path(dir, true); }

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read '" + path.string() + "': " + errno_text());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace ppreid::util
