// The container: reading with every rule of docs/model-format.md checked in the order the
// Python reader checked them (so the messages are the same), and writing. See container.hpp.
#include "io/container.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <tuple>

#include "cnnx/error.hpp"
#include "cnnx/tensor.hpp"
#include "io/json_text.hpp"
#include "io/sha256.hpp"

namespace cnnx::io {
namespace {

constexpr bool kLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

std::uint64_t load_u64_le(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void store_u64_le(std::uint64_t v, unsigned char* p) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

// Calls fn(bytes, size) over the little-endian bytes of `count` floats: the floats themselves
// on a little-endian machine, converted copies in chunks elsewhere.
template <typename Fn>
void for_each_le_chunk(const float* data, std::size_t count, Fn&& fn) {
  if (kLittleEndian) {
    if (count > 0) fn(data, count * sizeof(float));
    return;
  }
  unsigned char chunk[1 << 14];
  constexpr std::size_t kPer = sizeof chunk / 4;
  for (std::size_t done = 0; done < count; done += kPer) {
    const std::size_t n = std::min(kPer, count - done);
    for (std::size_t i = 0; i < n; ++i) {
      std::uint32_t bits;
      std::memcpy(&bits, data + done + i, 4);
      for (int b = 0; b < 4; ++b) chunk[4 * i + b] = static_cast<unsigned char>(bits >> (8 * b));
    }
    fn(chunk, 4 * n);
  }
}

void from_le_in_place(std::vector<float>& values) {
  if (kLittleEndian) return;
  for (float& v : values) {
    unsigned char b[4];
    std::memcpy(b, &v, 4);
    const std::uint32_t bits =
        std::uint32_t{b[0]} | std::uint32_t{b[1]} << 8 | std::uint32_t{b[2]} << 16 | std::uint32_t{b[3]} << 24;
    std::memcpy(&v, &bits, 4);
  }
}

// A header integer as uint64 if it is a non-negative integer (not a bool or float).
bool as_index(const Json& v, std::uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<std::uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
    *out = static_cast<std::uint64_t>(v.get<std::int64_t>());
    return true;
  }
  return false;
}

struct Entry {
  std::uint64_t begin, end;
  const std::string* name;
  Shape shape;
};

Entry tensor_entry(const std::string& key, const Json& info) {
  const auto bad = [&](const std::string& problem) {
    fail("tensor " + quote(key) + " has a malformed entry in the header (" + problem + "): " + quote(info));
  };
  const std::size_t length = utf8_length(key);
  if (length > kMaxName) {
    fail("a tensor name is " + std::to_string(length) + " characters long; expected at most " +
         std::to_string(kMaxName));
  }
  if (!info.is_object() || info.size() != 3 || !info.contains("dtype") || !info.contains("shape") ||
      !info.contains("data_offsets")) {
    bad("expected an object with exactly 'dtype', 'shape' and 'data_offsets'");
  }
  if (info["dtype"] != "F32") bad("expected dtype 'F32', received " + quote(info["dtype"]));
  const Json& shape = info["shape"];
  const Json& offsets = info["data_offsets"];
  Entry entry{0, 0, &key, {}};
  bool shape_ok = shape.is_array() && shape.size() <= kMaxRank;
  for (std::size_t i = 0; shape_ok && i < shape.size(); ++i) {
    std::uint64_t d = 0;
    shape_ok = as_index(shape[i], &d) && d <= static_cast<std::uint64_t>(kMaxDim);
    entry.shape.push_back(static_cast<std::int64_t>(d));
  }
  if (!shape_ok) {
    bad("expected 'shape' as a list of at most " + std::to_string(kMaxRank) + " integers in [0, " +
        std::to_string(kMaxDim) + "]");
  }
  if (!(offsets.is_array() && offsets.size() == 2 && as_index(offsets[0], &entry.begin) &&
        as_index(offsets[1], &entry.end) && entry.begin <= entry.end)) {
    bad("expected 'data_offsets' as [begin, end] with 0 <= begin <= end");
  }
  return entry;
}

// Whether `span` bytes are exactly the float32 values of `shape` (exact: no product can wrap).
bool span_matches(const Shape& shape, std::uint64_t span) {
  if (span % 4 != 0) return false;
  std::uint64_t count = 1;
  for (std::int64_t d : shape) {
    if (d == 0) return span == 0;
  }
  for (std::int64_t d : shape) {
    const auto u = static_cast<std::uint64_t>(d);
    if (count > span / 4 / u) return false;  // already more values than the span holds
    count *= u;
  }
  return count == span / 4;
}

std::string read_header(ByteSource& source, std::uint64_t size) {
  if (size == 0) fail("the file is empty");
  if (size < 8) {
    fail("the file is truncated (" + std::to_string(size) + " bytes; expected at least an 8-byte header length)");
  }
  unsigned char length[8];
  if (source.read(0, length, 8) != 8) fail("the file is truncated (it changed while being read)");
  const std::uint64_t n = load_u64_le(length);
  if (n > kMaxHeader || n > size - 8) {
    fail("the header length field says " + std::to_string(n) + " bytes but the file has " + std::to_string(size - 8) +
         " after it (truncated, or not a cnnx/safetensors file)");
  }
  std::string text(static_cast<std::size_t>(n), '\0');
  const std::size_t got = source.read(8, text.data(), text.size());
  if (got != n) {
    fail("the file is truncated (the header ends at byte " + std::to_string(8 + n) + ", the file at " +
         std::to_string(8 + got) + ")");
  }
  const std::size_t bad = invalid_utf8_at(text.data(), text.size());
  if (bad != text.size()) {
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(text[bad]));
    fail(std::string("the header is not valid UTF-8 (byte ") + byte + " at position " + std::to_string(bad) +
         "); the file is corrupted or not a cnnx model");
  }
  return text;
}

}  // namespace

ModelFileContents read_container(ByteSource& source) {
  const std::uint64_t size = source.size();
  const std::string text = read_header(source, size);
  Json header = parse_json_counted(text, "the header");
  if (!header.is_object()) fail("the header is not a JSON object; the file is corrupted or not a cnnx model");
  const auto meta_at = header.find("__metadata__");
  if (meta_at == header.end() || !meta_at->is_object() || meta_at->value("format", Json()) != "cnnx") {
    fail("not a cnnx model file (no '__metadata__' with format 'cnnx')");
  }
  Json& meta = *meta_at;
  const Json version = meta.value("format_version", Json());
  if (version != "1" && version != "2") {
    fail("format version " + (version.is_null() ? std::string("(none)") : quote(version)) +
         " is not supported (this cnnx reads versions 1 and 2)");
  }
  for (const auto& [key, value] : meta.items()) {
    if (!value.is_string()) {
      fail("metadata " + quote(key) + " is not a string (safetensors metadata values are strings)");
    }
  }
  if (header.size() - 1 > kMaxTensors) {
    fail("the header lists " + std::to_string(header.size() - 1) + " tensors; expected at most " +
         std::to_string(kMaxTensors));
  }
  const std::uint64_t data_size = size - 8 - text.size();
  std::vector<Entry> entries;
  entries.reserve(header.size() - 1);
  for (const auto& [key, info] : header.items()) {
    if (key == "__metadata__") continue;
    Entry entry = tensor_entry(key, info);
    if (!span_matches(entry.shape, entry.end - entry.begin)) {
      fail("tensor " + quote(key) + " of shape " + shape_str(entry.shape) + " does not match its byte range [" +
           std::to_string(entry.begin) + ", " + std::to_string(entry.end) + ")");
    }
    if (entry.end > data_size) {
      fail("the file is truncated: tensor " + quote(key) + " ends at byte " + std::to_string(entry.end) +
           " of the data but only " + std::to_string(data_size) + " bytes are present");
    }
    entries.push_back(std::move(entry));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, *a.name) < std::tie(b.begin, b.end, *b.name);
  });
  std::uint64_t covered = 0;
  for (const Entry& e : entries) {
    if (e.begin != covered) {
      fail("tensor data overlaps or leaves gaps at byte " + std::to_string(covered) + "; the file is corrupted");
    }
    covered = e.end;
  }
  if (covered != data_size) {
    fail(std::to_string(data_size - covered) + " unexpected bytes after the tensor data; the file is corrupted");
  }

  // Only now, with every span checked to lie inside the file without overlap, is memory taken
  // for the data: its size in all, which the file holds.
  const std::string stored = meta.contains("sha256") ? meta["sha256"].get<std::string>() : std::string();
  meta.erase("sha256");
  std::string canonical;
  append_canonical(canonical, header);
  Sha256 digest;
  digest.update(canonical);
  ModelFileContents contents;
  contents.tensors.reserve(entries.size());
  const std::uint64_t data_start = 8 + text.size();
  for (const Entry& e : entries) {
    FileTensor tensor{*e.name, e.shape, std::vector<float>(static_cast<std::size_t>((e.end - e.begin) / 4))};
    const std::size_t bytes = tensor.data.size() * sizeof(float);
    const std::size_t got = bytes ? source.read(data_start + e.begin, tensor.data.data(), bytes) : 0;
    if (got != bytes) {
      fail("the file is truncated (it changed while being read: " + std::to_string(e.begin + got) + " of " +
           std::to_string(data_size) + " data bytes)");
    }
    digest.update(tensor.data.data(), bytes);
    from_le_in_place(tensor.data);
    contents.tensors.push_back(std::move(tensor));
  }
  if (digest.hex_final() != stored) {
    fail("the header and data do not match their SHA-256 checksum; the file is corrupted");
  }
  for (const auto& [key, value] : meta.items()) contents.metadata.emplace(key, value.get<std::string>());
  return contents;
}

std::string container_head(const std::map<std::string, std::string>& metadata, const std::vector<TensorView>& tensors,
                           const std::string& where) {
  const auto bad = [&](const std::string& problem) { throw ValueError(where + ": " + problem); };
  const auto check_text = [&](const std::string& text, const char* what) {
    if (invalid_utf8_at(text.data(), text.size()) != text.size()) bad(std::string(what) + " is not valid UTF-8");
  };
  if (tensors.size() > kMaxTensors) {
    bad(std::to_string(tensors.size()) + " tensors; a model file holds at most " + std::to_string(kMaxTensors));
  }
  Json header = Json::object();
  std::uint64_t offset = 0;
  for (const TensorView& t : tensors) {
    const std::string& name = *t.name;
    check_text(name, "a tensor name");
    if (name == "__metadata__" || header.contains(name)) {
      bad("tensor name " + quote(name) + (name == "__metadata__" ? " is reserved" : " appears twice"));
    }
    if (utf8_length(name) > kMaxName) bad("tensor name " + quote(name) + " is longer than 4096 characters");
    bool shape_ok = t.shape->size() <= kMaxRank;
    for (std::int64_t d : *t.shape) shape_ok = shape_ok && d >= 0 && d <= kMaxDim;
    if (!shape_ok) {
      bad("tensor " + quote(name) + " has shape " + shape_str(*t.shape) + "; expected at most " +
          std::to_string(kMaxRank) + " axes in [0, " + std::to_string(kMaxDim) + "]");
    }
    std::uint64_t bytes = 0;
    try {
      bytes = static_cast<std::uint64_t>(checked_mul(shape_size(*t.shape), 4));
    } catch (const SizeError&) {
      bad("tensor " + quote(name) + " of shape " + shape_str(*t.shape) + " has more bytes than a file can hold");
    }
    if (bytes > std::numeric_limits<std::uint64_t>::max() - offset) bad("the tensors' total size overflows");
    header[name] = {{"dtype", "F32"}, {"shape", *t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  Json meta = Json::object();
  for (const auto& [key, value] : metadata) {
    if (key == "sha256") continue;  // computed below
    check_text(key, "a metadata key");
    check_text(value, "a metadata value");
    meta[key] = value;
  }
  meta["format"] = "cnnx";
  if (!meta.contains("format_version")) meta["format_version"] = "1";
  if (meta["format_version"] != "1" && meta["format_version"] != "2") {
    bad("expected format_version '1' or '2', received " + quote(meta["format_version"]));
  }
  header["__metadata__"] = std::move(meta);

  std::string canonical;
  append_canonical(canonical, header);
  if (canonical.size() + 128 > kMaxHeader) {  // + the checksum entry and the padding
    bad("the header would take " + std::to_string(canonical.size()) + " bytes; a model file's header holds at most " +
        std::to_string(kMaxHeader));
  }
  Sha256 digest;
  digest.update(canonical);
  for (const TensorView& t : tensors) {
    for_each_le_chunk(t.data, static_cast<std::size_t>(shape_size(*t.shape)),
                      [&](const void* p, std::size_t n) { digest.update(p, n); });
  }
  header["__metadata__"]["sha256"] = digest.hex_final();
  std::string text;
  append_canonical(text, header);               // sorted keys like the checksummed form: easy to compare by eye
  text.append((8 - text.size() % 8) % 8, ' ');  // safetensors pads so that the data starts 8-aligned

  unsigned char length[8];
  store_u64_le(text.size(), length);
  return std::string(reinterpret_cast<const char*>(length), 8) + text;
}

void write_container_data(const std::vector<TensorView>& tensors, const ByteSink& sink) {
  for (const TensorView& t : tensors) {
    for_each_le_chunk(t.data, static_cast<std::size_t>(shape_size(*t.shape)), sink);
  }
}

}  // namespace cnnx::io
