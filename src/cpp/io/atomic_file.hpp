// Files of the model format on disk, private to the core (POSIX): reading a file piecewise,
// and writing one atomically as docs/model-format.md's "Writing rules" say -- a temporary
// file `.<name>.<host>.<pid>.<random>.cnnx-tmp` in the destination's directory, fsynced, then
// renamed over the destination, and the directory fsynced -- with the temporary files of
// writers that died (kill -9, power loss) removed by the next save or load.
//
// I/O errors are std::system_error(errno, generic_category, <path as given>): the message
// names the user's path, never the temporary file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "io/container.hpp"

namespace cnnx::io {

class FileSource : public ByteSource {
 public:
  explicit FileSource(const std::string& path);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;
  std::uint64_t size() const override { return size_; }
  std::size_t read(std::uint64_t offset, void* dst, std::size_t n) override;

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

// Writes the bytes `produce` gives its sink to `path`, atomically. A symlink is written
// through (its target replaced, the link kept); the file keeps the mode of the file it
// replaces, a new one gets 0666 minus the umask, as open(path, "w") would. Whatever fails, the
// temporary file is removed and the destination untouched.
void write_file_atomically(const std::string& path, const std::function<void(const ByteSink&)>& produce);

// Removes, best effort and silently, the temporary files in `directory` of writers on this
// host that no longer run (or that name this process but are not being written by it).
// Files of live processes, of other hosts and of any other naming are never touched.
void remove_stale_temp_files(const std::string& directory);
// The directory a read or write of `path` works in: that of the file it finally names.
std::string directory_of(const std::string& path);
// 8 hex digits of SHA-256 of the host name: the <host> of a temporary file's name.
std::string host_tag();

}  // namespace cnnx::io
