// Reading and atomic writing of model files; see atomic_file.hpp.
#include "io/atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <mutex>
#include <random>
#include <set>
#include <system_error>
#include <vector>

#include "io/sha256.hpp"

namespace cnnx::io {
namespace {

constexpr char kTempSuffix[] = ".cnnx-tmp";

[[noreturn]] void io_error(int code, const std::string& path) {
  throw std::system_error(code, std::generic_category(), path);
}

// Temporary files this process is writing right now (names only: unique by pid and random).
std::mutex writing_mutex;
std::set<std::string>& writing() {
  static std::set<std::string> names;
  return names;
}

struct WritingGuard {
  std::string name;
  explicit WritingGuard(std::string n) : name(std::move(n)) {
    std::lock_guard<std::mutex> lock(writing_mutex);
    writing().insert(name);
  }
  ~WritingGuard() {
    std::lock_guard<std::mutex> lock(writing_mutex);
    writing().erase(name);
  }
};

std::string dirname(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string basename(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The file a write to `path` replaces: trailing slashes dropped, then symlinks followed (even
// dangling ones, whose target the write creates), as open(path, "w") and os.path.realpath do.
std::string final_target(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
    std::vector<char> buf(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : PATH_MAX) + 1);
    const ssize_t n = readlink(path.c_str(), buf.data(), buf.size());
    if (n < 0 || static_cast<std::size_t>(n) >= buf.size()) return path;  // changed meanwhile: let open() decide
    const std::string link(buf.data(), static_cast<std::size_t>(n));
    path = (link.front() == '/' || path.find('/') == std::string::npos) ? link : dirname(path) + "/" + link;
  }
  return path;  // a loop: the open below reports ELOOP
}

std::string random_hex16() {
  static std::mutex mutex;
  static std::mt19937_64 engine = [] {
    std::random_device device;  // /dev/urandom; the pid and a counter make a collision harmless anyway
    std::seed_seq seed{device(), device(), static_cast<unsigned>(getpid())};
    return std::mt19937_64(seed);
  }();
  std::lock_guard<std::mutex> lock(mutex);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(engine()));
  return buf;
}

std::string temp_name(const std::string& target) {
  std::string base = basename(target);
  if (base.size() > 100) {  // room for the rest within the usual 255-byte limit; whole characters
    std::size_t end = 100;
    while (end > 0 && (static_cast<unsigned char>(base[end]) & 0xC0) == 0x80) --end;
    base.resize(end);
  }
  return "." + base + "." + host_tag() + "." + std::to_string(getpid()) + "." + random_hex16() + kTempSuffix;
}

bool is_hex(const std::string& s, std::size_t from, std::size_t n) {
  if (from + n > s.size()) return false;
  for (std::size_t i = from; i < from + n; ++i) {
    const char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The <host> and <pid> of a temporary file's name `.<name>.<host>.<pid>.<16 hex>.cnnx-tmp`
// (<name> may hold dots, so it is read from the right); false for any other name.
bool parse_temp_name(const std::string& name, std::string* host, unsigned long long* pid) {
  const std::size_t suffix = sizeof kTempSuffix - 1;
  if (name.size() < suffix + 1 || name[0] != '.' || name.compare(name.size() - suffix, suffix, kTempSuffix) != 0) {
    return false;
  }
  std::size_t end = name.size() - suffix;  // one past the random part
  if (end < 17 || !is_hex(name, end - 16, 16) || name[end - 17] != '.') return false;
  end -= 17;  // one past the pid
  std::size_t digits = 0;
  while (digits < end && name[end - 1 - digits] >= '0' && name[end - 1 - digits] <= '9') ++digits;
  if (digits < 1 || digits > 10 || digits == end || name[end - 1 - digits] != '.') return false;
  *pid = std::stoull(name.substr(end - digits, digits));
  end -= digits + 1;  // one past the host
  if (end < 10 || !is_hex(name, end - 8, 8) || name[end - 9] != '.') return false;
  *host = name.substr(end - 8, 8);
  return end - 9 >= 1;  // the leading '.' before <name> is not the host's dot
}

void write_all(int fd, const void* data, std::size_t size, const std::string& path) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      io_error(errno, path);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

}  // namespace

std::string host_tag() {
  static const std::string tag = [] {
    char name[HOST_NAME_MAX + 2] = {};
    if (gethostname(name, sizeof name - 1) != 0) name[0] = '\0';
    Sha256 digest;
    digest.update(std::string(name));
    return digest.hex_final().substr(0, 8);
  }();
  return tag;
}

std::string directory_of(const std::string& path) { return dirname(final_target(path)); }

void remove_stale_temp_files(const std::string& directory) {
  DIR* dir = opendir(directory.c_str());
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  const std::string host = host_tag();
  const auto me = static_cast<unsigned long long>(getpid());
  while (const dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    std::string file_host;
    unsigned long long pid = 0;
    if (!parse_temp_name(name, &file_host, &pid) || file_host != host) continue;
    if (pid == me) {
      std::lock_guard<std::mutex> lock(writing_mutex);
      if (writing().count(name) == 0) stale.push_back(name);
      continue;
    }
    if (pid > static_cast<unsigned long long>(INT_MAX)) continue;  // not a pid this system can have
    // kill(pid, 0): 0 = alive (perhaps a reused pid: the file waits until that process ends),
    // EPERM = alive and someone else's, ESRCH = gone.
    if (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) stale.push_back(name);
  }
  const int fd = dirfd(dir);
  for (const std::string& name : stale) unlinkat(fd, name.c_str(), 0);  // gone already, or not ours: fine
  closedir(dir);
}

FileSource::FileSource(const std::string& path) : path_(path) {
  do {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd_ < 0 && errno == EINTR);
  if (fd_ < 0) io_error(errno, path);
  struct stat st;
  if (fstat(fd_, &st) != 0) {
    const int code = errno;
    ::close(fd_);
    io_error(code, path);
  }
  if (S_ISDIR(st.st_mode)) {  // open() accepts a directory; reading it would fail less clearly
    ::close(fd_);
    io_error(EISDIR, path);
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
}

FileSource::~FileSource() { ::close(fd_); }

std::size_t FileSource::read(std::uint64_t offset, void* dst, std::size_t n) {
  auto* p = static_cast<char*>(dst);
  std::size_t done = 0;
  while (done < n) {
    const std::size_t chunk = std::min<std::size_t>(n - done, std::size_t{1} << 30);
    const ssize_t got = ::pread(fd_, p + done, chunk, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      io_error(errno, path_);
    }
    if (got == 0) break;  // the end of the file (it shrank since it was measured)
    done += static_cast<std::size_t>(got);
  }
  return done;
}

void write_file_atomically(const std::string& path, const std::function<void(const ByteSink&)>& produce) {
  const std::string target = final_target(path);
  const std::string directory = dirname(target);
  remove_stale_temp_files(directory);
  struct stat st;
  const bool replaces = ::stat(target.c_str(), &st) == 0;
  if (!replaces && errno != ENOENT) io_error(errno, path);

  std::string name, tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    name = temp_name(target);
    tmp = directory + "/" + name;
    // 0666: the kernel applies the umask (and any default ACL) exactly as for open(path, "w")
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && !(errno == EINTR || (errno == EEXIST && attempt < 8))) io_error(errno, path);
  }
  WritingGuard guard(name);
  try {
    if (replaces && fchmod(fd, st.st_mode & 07777) != 0) io_error(errno, path);
    produce([&](const void* data, std::size_t size) { write_all(fd, data, size, path); });
    if (fsync(fd) != 0) io_error(errno, path);
    const int closed = ::close(fd);
    fd = -1;
    if (closed != 0) io_error(errno, path);
    if (std::rename(tmp.c_str(), target.c_str()) != 0) io_error(errno, path);
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // Makes the rename itself durable; a failure here leaves a complete file either way.
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_CLOEXEC);
  if (dir_fd >= 0) {
    fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace cnnx::io
