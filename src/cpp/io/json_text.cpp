// Bounded JSON parsing, the canonical form and quoting; see json_text.hpp.
#include "io/json_text.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace cnnx::io {

void fail(const std::string& problem) { throw FileProblem(problem); }

std::size_t invalid_utf8_at(const char* text, std::size_t size) {
  const auto* s = reinterpret_cast<const unsigned char*>(text);
  std::size_t i = 0;
  while (i < size) {
    const unsigned c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // The allowed range of the second byte narrows for E0, ED, F0 and F4 (RFC 3629, table 3-7).
    std::size_t extra = 0;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (size - i <= extra) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (std::size_t k = 2; k <= extra; ++k) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return i;
    }
    i += extra + 1;
  }
  return size;
}

std::size_t utf8_length(const std::string& text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

namespace {

std::string parse_error_text(const Json::exception& e) {
  // "[json.exception.parse_error.101] parse error at line 1, column 3: ..." without the tag;
  // the part nlohmann quotes from the input ("last read: '...'") can hold any byte, so the
  // message keeps only printable ASCII.
  std::string text = e.what();
  const std::size_t tag = text.find("] ");
  if (text.rfind("[json.exception.", 0) == 0 && tag != std::string::npos) text.erase(0, tag + 2);
  std::string out;
  for (char c : text) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (out.size() > 300) out = out.substr(0, 295) + " ...)";
  return out;
}

}  // namespace

Json parse_json(const std::string& text, const std::string& what) {
  // The nesting is measured on the text before parsing (brackets outside strings), not with
  // nlohmann's parser callback: that one rescans the parent object at the end of every child,
  // quadratic in a header of many tensors.
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        fail(what + " is nested more than " + std::to_string(kMaxJsonDepth) + " levels deep");
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  // nlohmann skips a byte-order mark; Python's json.loads (and so the format) does not.
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) fail(what + " is not valid JSON (it starts with a byte-order mark)");
  try {
    return Json::parse(text, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const Json::exception& e) {
    fail(what + " is not valid JSON (" + parse_error_text(e) + ")");
  }
}

Json parse_json_counted(const std::string& text, const std::string& what) {
  const auto containers =
      static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) { return c == '[' || c == '{'; }));
  if (containers > kMaxJsonContainers) {
    fail(what + " holds " + std::to_string(containers) + " JSON arrays or objects; expected at most " +
         std::to_string(kMaxJsonContainers));
  }
  return parse_json(text, what);
}

namespace {

void append_u_escape(std::string& out, unsigned unit) {
  char buf[16];  // "\\u" and four hex digits (units are < 0x10000), with room GCC can prove
  std::snprintf(buf, sizeof buf, "\\u%04x", unit);
  out += buf;
}

}  // namespace

void append_json_string(std::string& out, const std::string& utf8) {
  if (invalid_utf8_at(utf8.data(), utf8.size()) != utf8.size()) {
    throw ValueError("model file: a string to be written is not valid UTF-8: " + quote(utf8));
  }
  out += '"';
  const auto* s = reinterpret_cast<const unsigned char*>(utf8.data());
  for (std::size_t i = 0; i < utf8.size();) {
    const unsigned c = s[i];
    if (c >= 0x20 && c < 0x7f) {
      if (c == '"' || c == '\\') out += '\\';
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    switch (c) {
      case '\b':
        out += "\\b";
        ++i;
        continue;
      case '\f':
        out += "\\f";
        ++i;
        continue;
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      default: break;
    }
    std::uint32_t cp = c;
    std::size_t n = 1;
    if (c >= 0xF0) {
      cp = c & 0x07, n = 4;
    } else if (c >= 0xE0) {
      cp = c & 0x0F, n = 3;
    } else if (c >= 0xC0) {
      cp = c & 0x1F, n = 2;
    }
    for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (s[i + k] & 0x3F);
    i += n;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      append_u_escape(out, 0xD800 + (cp >> 10));
      append_u_escape(out, 0xDC00 + (cp & 0x3FF));
    } else {
      append_u_escape(out, cp);
    }
  }
  out += '"';
}

void append_canonical(std::string& out, const Json& value) {
  switch (value.type()) {
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, item] : value.items()) {  // std::map: sorted by UTF-8 bytes = code points
        if (!first) out += ',';
        first = false;
        append_json_string(out, key);
        out += ':';
        append_canonical(out, item);
      }
      out += '}';
      return;
    }
    case Json::value_t::array: {
      out += '[';
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (i) out += ',';
        append_canonical(out, value[i]);
      }
      out += ']';
      return;
    }
    case Json::value_t::string: append_json_string(out, value.get_ref<const std::string&>()); return;
    case Json::value_t::number_integer: out += std::to_string(value.get<std::int64_t>()); return;
    case Json::value_t::number_unsigned: out += std::to_string(value.get<std::uint64_t>()); return;
    case Json::value_t::boolean: out += value.get<bool>() ? "true" : "false"; return;
    case Json::value_t::null: out += "null"; return;
    default: fail("a header value cannot be put in canonical form: " + quote(value));
  }
}

namespace {

std::string cut(std::string text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit > 5 ? limit - 5 : 0;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;  // a whole character
  return text.substr(0, end) + " ...)";
}

}  // namespace

std::string quote(const std::string& text, std::size_t limit) {
  std::string out = "'";
  const bool utf8 = invalid_utf8_at(text.data(), text.size()) == text.size();
  for (char ch : text) {
    if (out.size() > limit + 8) break;  // cut below; no need to escape a megabyte first
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  out += '\'';
  return cut(out, limit);
}

std::string quote(const Json& value, std::size_t limit) {
  if (value.is_string()) return quote(value.get_ref<const std::string&>(), limit);
  // ensure_ascii and replacement of invalid UTF-8: the message stays printable and valid
  return cut(value.dump(-1, ' ', true, Json::error_handler_t::replace), limit);
}

}  // namespace cnnx::io
