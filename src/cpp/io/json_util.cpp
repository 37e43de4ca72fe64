#include "io/json_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "cnnx/error.hpp"

namespace cnnx::io {
namespace {

// Thrown from the parser callback to stop at the first level too deep.
struct TooDeep {};

void repr_string(const std::string& s, std::string& out) {
  const bool dquote = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char quote = dquote ? '"' : '\'';
  out += quote;
  for (unsigned char c : s) {
    if (c == '\\' || c == static_cast<unsigned char>(quote)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
}

// Stops once `out` is long enough for any clip: a 16 MiB list must not be printed in full.
void repr(const json& v, std::string& out, std::size_t enough) {
  if (out.size() > enough) return;
  switch (v.type()) {
    case json::value_t::null: out += "None"; break;
    case json::value_t::boolean: out += v.get<bool>() ? "True" : "False"; break;
    case json::value_t::string: repr_string(v.get_ref<const std::string&>(), out); break;
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ", ";
        first = false;
        repr(e, out, enough);
        if (out.size() > enough) return;
      }
      out += ']';
      break;
    }
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        repr_string(it.key(), out);
        out += ": ";
        repr(it.value(), out, enough);
        if (out.size() > enough) return;
      }
      out += '}';
      break;
    }
    default: out += v.dump(); break;  // numbers: nlohmann writes the shortest form, as Python
  }
}

// The first `n` code points of UTF-8 text (never cuts a character in two).
std::string utf8_prefix(const std::string& s, std::size_t n) {
  std::size_t i = 0, count = 0;
  while (i < s.size()) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (count == n) break;
      ++count;
    }
    ++i;
  }
  return s.substr(0, i);
}

std::string cut(const std::string& text, std::size_t limit) {
  if (static_cast<std::size_t>(utf8_length(text)) <= limit) return text;
  return utf8_prefix(text, limit - 5) + " ...)";
}

void dumps(const ojson& v, std::string& out) {
  switch (v.type()) {
    case ojson::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        out += ojson(it.key()).dump(-1, ' ', true);
        out += ": ";
        dumps(it.value(), out);
      }
      out += '}';
      break;
    }
    case ojson::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ", ";
        first = false;
        dumps(e, out);
      }
      out += ']';
      break;
    }
    default: out += v.dump(-1, ' ', true); break;
  }
}

}  // namespace

json parse_bounded(const std::string& text, const std::string& what) {
  const auto containers = std::count(text.begin(), text.end(), '[') + std::count(text.begin(), text.end(), '{');
  if (containers > kMaxContainers)
    throw ValueError(what + " holds " + std::to_string(containers) + " JSON arrays or objects; expected at most " +
                     std::to_string(kMaxContainers));
  const json::parser_callback_t depth_check = [](int depth, json::parse_event_t event, json&) {
    // `depth` counts the containers around this one; Python counts this one too.
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth + 1 > kMaxDepth)
      throw TooDeep{};
    return true;
  };
  try {
    return json::parse(text, depth_check);
  } catch (const TooDeep&) {
    throw ValueError(what + " is nested more than " + std::to_string(kMaxDepth) + " levels deep");
  } catch (const json::parse_error& e) {
    std::string detail = e.what();
    const auto close = detail.find("] ");
    if (detail.rfind("[json.exception", 0) == 0 && close != std::string::npos) detail = detail.substr(close + 2);
    throw ValueError(what + " is not valid JSON (" + cut(detail, 200) + ")");
  }
}

std::string clip(const json& value, std::size_t limit) {
  std::string out;
  repr(value, out, 4 * limit + 16);
  return cut(out, limit);
}

std::string clip(const std::string& text, std::size_t limit) { return clip(json(text), limit); }

std::string python_dumps(const ojson& value) {
  std::string out;
  dumps(value, out);
  return out;
}

double float_value(float f) {
  if (!std::isfinite(f)) return f;
  char buf[32];
  for (int precision = 1; precision <= 9; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, static_cast<double>(f));
    if (std::strtof(buf, nullptr) == f) return std::strtod(buf, nullptr);
  }
  return f;
}

bool is_int(const json& v) { return v.is_number_integer(); }

bool int_value(const json& v, std::int64_t* out) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX)) return false;
    *out = static_cast<std::int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    *out = v.get<std::int64_t>();
    return true;
  }
  return false;
}

std::int64_t utf8_length(const std::string& s) {
  std::int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace cnnx::io
