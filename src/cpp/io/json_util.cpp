#include "io/json_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "cnnx/error.hpp"

namespace cnnx::io {
namespace {

// Stops once `out` is long enough for any clip: a 16 MiB list must not be printed in full.
void repr(const json& v, std::string& out, std::size_t enough) {
  if (out.size() > enough) return;
  switch (v.type()) {
    case json::value_t::null: out += "null"; break;
    case json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; break;
    case json::value_t::string: out += v.dump(-1, ' ', true, json::error_handler_t::replace); break;
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ',';
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
        if (!first) out += ',';
        first = false;
        out += json(it.key()).dump(-1, ' ', true, json::error_handler_t::replace);
        out += ':';
        repr(it.value(), out, enough);
        if (out.size() > enough) return;
      }
      out += '}';
      break;
    }
    default: out += v.dump(); break;  // numbers
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
  if (utf8_length(text) <= limit) return text;
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

std::string clip(const json& value, std::size_t limit) {
  if (value.is_string()) return quote(value.get_ref<const std::string&>(), limit);
  std::string out;
  repr(value, out, 4 * limit + 16);
  return cut(out, limit);
}

std::string clip(const std::string& text, std::size_t limit) { return quote(text, limit); }

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

}  // namespace cnnx::io
