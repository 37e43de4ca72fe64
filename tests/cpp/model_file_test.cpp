// The model-file container in C++ (cnnx/model_file.hpp): serialize / parse and write / read
// round trips, cnnx::ValueError "<name>: <problem>" for bad bytes, std::system_error for I/O,
// the writer's refusals, and the atomic writer's temporary files (src/cpp/io/atomic_file.hpp).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cnnx/error.hpp>
#include <cnnx/model_file.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include "io/atomic_file.hpp"

namespace {

cnnx::ModelFileContents sample() {
  cnnx::ModelFileContents c;
  c.metadata = {{"contents", "weights"}, {"note", "caf\xc3\xa9 \xf0\x9f\x98\x80 \"quoted\"\n"}};
  c.tensors.push_back({"weights/dense/kernel", {2, 3}, {1, -2, 3.5f, 4, 5, 6e-8f}});
  c.tensors.push_back({"weights/dense/bias", {3}, {0.25f, 0, -1}});
  c.tensors.push_back({"empty", {0, 4}, {}});
  c.tensors.push_back({"scalar", {}, {42}});
  return c;
}

void expect_same_tensors(const cnnx::ModelFileContents& a, const cnnx::ModelFileContents& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {  // in the order of the data: as written
    EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
    EXPECT_EQ(a.tensors[i].shape, b.tensors[i].shape);
    EXPECT_EQ(a.tensors[i].data, b.tensors[i].data);
  }
}

std::string message_of(const std::vector<std::uint8_t>& bytes) {
  try {
    cnnx::parse_model_file(bytes.data(), bytes.size(), "m.cnnx");
  } catch (const cnnx::ValueError& e) {
    return e.what();
  }
  return "";
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/cnnx_model_file_test.XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& line : lines("ls -A '" + path + "'")) out.push_back(line);
    return out;
  }
  static std::vector<std::string> lines(const std::string& command) {
    std::vector<std::string> out;
    FILE* pipe = popen(command.c_str(), "r");
    char buf[4096];
    while (pipe && fgets(buf, sizeof buf, pipe)) {
      std::string line = buf;
      if (!line.empty() && line.back() == '\n') line.pop_back();
      out.push_back(line);
    }
    if (pipe) pclose(pipe);
    return out;
  }
};

TEST(ModelFile, SerializeParseRoundTrip) {
  const cnnx::ModelFileContents c = sample();
  const std::vector<std::uint8_t> bytes = cnnx::serialize_model_file(c);
  ASSERT_GE(bytes.size(), 8u);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  EXPECT_EQ(n % 8, 0u);  // padded so that the data starts 8-aligned
  const std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  for (char ch : header) EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << "the header is printable ASCII";
  const cnnx::ModelFileContents back = cnnx::parse_model_file(bytes.data(), bytes.size(), "m.cnnx");
  auto expected = c.metadata;
  expected["format"] = "cnnx";
  expected["format_version"] = "1";
  EXPECT_EQ(back.metadata, expected);  // without sha256
  expect_same_tensors(c, back);
  EXPECT_EQ(cnnx::serialize_model_file(back), bytes);  // deterministic
}

TEST(ModelFile, BadBytesAreValueErrorsNamingTheFile) {
  const std::vector<std::uint8_t> good = cnnx::serialize_model_file(sample());
  EXPECT_EQ(message_of({}), "m.cnnx: the file is empty");
  EXPECT_EQ(
      message_of(std::vector<std::uint8_t>(good.begin(), good.end() - 1)).rfind("m.cnnx: the file is truncated", 0),
      0u);
  std::vector<std::uint8_t> flipped = good;
  flipped.back() ^= 1;
  EXPECT_NE(message_of(flipped).find("SHA-256 checksum"), std::string::npos);
  std::vector<std::uint8_t> extra = good;
  extra.push_back(0);
  EXPECT_NE(message_of(extra).find("1 unexpected bytes after the tensor data"), std::string::npos);
  // every single flipped byte of the file is refused with a cnnx::ValueError
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::vector<std::uint8_t> bad = good;
    bad[i] ^= 0x21;
    EXPECT_EQ(message_of(bad).rfind("m.cnnx: ", 0), 0u) << "byte " << i;
  }
}

TEST(ModelFile, WriterRefusesWhatTheReaderWould) {
  cnnx::ModelFileContents c = sample();
  c.tensors[0].data.pop_back();
  EXPECT_THROW(cnnx::serialize_model_file(c), cnnx::ValueError);  // 5 values for shape (2, 3)
  c = sample();
  c.tensors.push_back(c.tensors[0]);
  EXPECT_THROW(cnnx::serialize_model_file(c), cnnx::ValueError);  // a name twice
  c = sample();
  c.metadata["format_version"] = "3";
  EXPECT_THROW(cnnx::serialize_model_file(c), cnnx::ValueError);
  c = sample();
  c.metadata["bad"] = "\xff";
  EXPECT_THROW(cnnx::serialize_model_file(c), cnnx::ValueError);  // not UTF-8
  c = sample();
  c.metadata["format_version"] = "2";
  c.metadata["sha256"] = "ignored";
  const auto bytes = cnnx::serialize_model_file(c);
  EXPECT_EQ(cnnx::parse_model_file(bytes.data(), bytes.size(), "x").metadata.at("format_version"), "2");
}

TEST(ModelFile, WriteReadAtomically) {
  TempDir dir;
  const std::string path = dir.path + "/m.cnnx";
  cnnx::write_model_file(path, sample());
  expect_same_tensors(sample(), cnnx::read_model_file(path));
  chmod(path.c_str(), 0604);
  cnnx::ModelFileContents second = sample();
  second.tensors[1].data = {9, 9, 9};
  cnnx::write_model_file(path, second);  // replaces the file, keeps its mode
  expect_same_tensors(second, cnnx::read_model_file(path));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0604u);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"m.cnnx"});  // no temporary file left
  // a refused write leaves the file as it was and no temporary file
  second.tensors[0].data.clear();
  EXPECT_THROW(cnnx::write_model_file(path, second), cnnx::ValueError);
  EXPECT_EQ(cnnx::read_model_file(path).tensors[1].data, (std::vector<float>{9, 9, 9}));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"m.cnnx"});
}

TEST(ModelFile, IoErrorsAreSystemErrorsNamingThePath) {
  TempDir dir;
  const std::string missing = dir.path + "/no/such/m.cnnx";
  try {
    cnnx::write_model_file(missing, sample());
    FAIL() << "expected std::system_error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_EQ(std::string(e.what()).rfind(missing + ": ", 0), 0u) << e.what();
  }
  try {
    cnnx::read_model_file(missing);
    FAIL() << "expected std::system_error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
  }
}

TEST(ModelFile, StaleTemporaryFilesOfDeadWritersAreRemoved) {
  TempDir dir;
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);  // a pid that no longer runs
  const std::string host = cnnx::io::host_tag();
  const auto temp = [&](const std::string& h, long pid) {
    const std::string name = ".m.cnnx." + h + "." + std::to_string(pid) + ".0123456789abcdef.cnnx-tmp";
    std::ofstream(dir.path + "/" + name) << "partial";
    return name;
  };
  const std::string dead = temp(host, child);
  const std::string alive = temp(host, getppid());
  const std::string mine = temp(host, getpid());  // this process, but not being written: stale
  const std::string other_host = temp(host == "00000000" ? "ffffffff" : "00000000", child);
  std::ofstream(dir.path + "/m.cnnx.tmp") << "not our naming";
  cnnx::write_model_file(dir.path + "/m.cnnx", sample());
  auto left = dir.entries();
  std::sort(left.begin(), left.end());
  std::vector<std::string> expected{alive, other_host, "m.cnnx", "m.cnnx.tmp"};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(left, expected);  // without `dead` and `mine`
  EXPECT_EQ(std::count(left.begin(), left.end(), dead) + std::count(left.begin(), left.end(), mine), 0);
}

}  // namespace
