#include "core/util/private_file.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/util/atomic_file.h"
#include "core/util/error.h"

namespace ppreid::util {
namespace fs = std::filesystem;
namespace {

std::string random_suffix() {
  unsigned char salt[6];
  if (RAND_bytes(salt, sizeof salt) != 1) {
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    throw Error(std::string("OpenSSL's CSPRNG failed (") + buf + "); nothing was written");
  }
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : salt) out += {digits[b >> 4], digits[b & 15]};
  return out;
}

}  // namespace

void write_new_file(const fs::path& path, std::string_view contents, unsigned mode) {
  // Created owner-only whatever `mode` is; widened (if asked) only once it is ours.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw Error("cannot create '" + path.string() + "': " + errno_text());
  // The umask can only remove bits; set exactly `mode` either way.
  bool ok = ::fchmod(fd, static_cast<mode_t>(mode)) == 0;
  std::size_t done = 0;
  while (ok && done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      ok = false;
    else
      done += static_cast<std::size_t>(n);
  }
  std::string why = ok ? "" : errno_text();
  if (::close(fd) != 0 && ok) ok = false, why = errno_text();
  if (!ok) throw Error("cannot write '" + path.string() + "': " + why);
}

void create_new_file(const fs::path& path, std::string_view contents, std::string_view what,
                     unsigned mode) {
  const std::string name = std::string(what) + " '" + path.string() + "'";
  if (fs::exists(fs::symlink_status(path)))
    throw Error(name + " already exists; refusing to overwrite it (it may be the only copy of a "
                       "key): choose another path");
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  if (!fs::is_directory(dir))
    throw Error("cannot create " + name + ": directory '" + dir.string() + "' does not exist");

  // Appended piece by piece: GCC 12 warns (-Wstringop-overflow, falsely) about "." + string.
  std::string tmp_name = ".";
  tmp_name += path.filename().string();
  tmp_name += ".tmp.";
  tmp_name += random_suffix();
  const fs::path tmp = dir / tmp_name;
  write_new_file(tmp, contents, mode);
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  bool synced = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  int linked = synced ? ::link(tmp.c_str(), path.c_str()) : -1;
  int link_errno = errno;
  std::string why = synced ? errno_text() : "cannot sync it to disk";
  ::unlink(tmp.c_str());
  if (linked != 0)
    throw Error("cannot create " + name + ": " +
                (synced && link_errno == EEXIST
                     ? std::string("it already exists; refusing to overwrite it")
                     : why));
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string read_private_file(const fs::path& path, std::size_t max_bytes, std::string_view what,
                              std::string_view missing_hint, const std::string& too_long) {
  const std::string name = std::string(what) + " '" + path.string() + "'";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw Error(name + " cannot be read (" + errno_text() + "); " + std::string(missing_hint));
  if (!S_ISREG(st.st_mode)) throw Error(name + " is not a regular file");
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw Error(name + " has mode " + mode +
                ": group or others may read or write it; run `chmod 600 " + path.string() +
                "` (and consider the key exposed if others could read it)");
  }
  if (static_cast<std::uintmax_t>(st.st_size) > max_bytes) throw Error(too_long);
  std::string text = read_file(path);
  if (text.size() > max_bytes) {  // grew between stat and read
    OPENSSL_cleanse(text.data(), text.size());
    throw Error(too_long);
  }
  return text;
}

}  // namespace ppreid::util
