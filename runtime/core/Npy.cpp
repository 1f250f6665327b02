//===- Npy.cpp - Reading and writing NumPy .npy files ---------------------===//
//
// The format: "\x93NUMPY", major and minor version bytes, a header length
// (2 bytes little-endian in 1.0, 4 bytes in 2.0/3.0), then a Python dict
// literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and a newline so the data starts 64-byte aligned.
//
//===----------------------------------------------------------------------===//

#include "runtime/core/Npy.h"

#include "runtime/core/FileIO.h"
#include "runtime/core/PlanTypes.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace colossal::rt {
namespace {

const char kMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

// A cursor over the header dict with just enough parsing for .npy headers.
struct HeaderParser {
  const std::string &text;
  size_t pos = 0;

  void skipSpace() {
    while (pos < text.size() &&
           std::isspace(static_cast<unsigned char>(text[pos])))
      ++pos;
  }
  bool consume(char c) {
    skipSpace();
    if (pos < text.size() && text[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  bool quoted(std::string &out) {
    skipSpace();
    if (pos >= text.size() || (text[pos] != '\'' && text[pos] != '"'))
      return false;
    char q = text[pos++];
    size_t end = text.find(q, pos);
    if (end == std::string::npos)
      return false;
    out = text.substr(pos, end - pos);
    pos = end + 1;
    return true;
  }
  bool word(std::string &out) {
    skipSpace();
    size_t start = pos;
    while (pos < text.size() &&
           std::isalnum(static_cast<unsigned char>(text[pos])))
      ++pos;
    out = text.substr(start, pos - start);
    return !out.empty();
  }
  bool integer(int64_t &out) {
    skipSpace();
    size_t start = pos;
    while (pos < text.size() &&
           std::isdigit(static_cast<unsigned char>(text[pos])))
      ++pos;
    // Python 2 era files may write 3L.
    std::string digits = text.substr(start, pos - start);
    if (pos < text.size() && text[pos] == 'L')
      ++pos;
    if (digits.empty() || digits.size() > 18)
      return false;
    out = std::stoll(digits);
    return true;
  }
  bool tuple(std::vector<int64_t> &out) {
    if (!consume('('))
      return false;
    out.clear();
    while (!consume(')')) {
      int64_t v;
      if (!integer(v))
        return false;
      out.push_back(v);
      if (!consume(',')) {
        if (!consume(')'))
          return false;
        break;
      }
    }
    return true;
  }
};

// The runtime dtype of a descr, or an explanation of why it is refused.
bool dtypeOfDescr(const std::string &descr, DType &out, std::string &why) {
  if (descr.size() < 2) {
    why = "has an unknown element type '" + descr + "'";
    return false;
  }
  char order = descr[0];
  std::string kind = descr.substr(1);
  if (order == '>' && kind != "b1" && kind != "u1" && kind != "i1") {
    why = "is big-endian ('" + descr +
          "'); save it little-endian: arr.astype(arr.dtype.newbyteorder('<'))";
    return false;
  }
  if (kind == "f4")
    out = DType::F32;
  else if (kind == "f2")
    out = DType::F16;
  else if (kind == "i8")
    out = DType::I64;
  else if (kind == "i4")
    out = DType::I32;
  else if (kind == "b1")
    out = DType::Bool;
  else if (kind == "f8")
    out = DType::F64;
  else if (kind == "u1" || kind == "i1" || kind == "i2" || kind == "u2" ||
           kind == "u4" || kind == "u8") {
    why = "has integer type '" + descr +
          "', which the runtime does not support; save it as int32 or int64: "
          "arr.astype(np.int64)";
    return false;
  } else {
    why = "has element type '" + descr +
          "', which the runtime does not support (supported: float32, "
          "float16, int64, int32, bool)";
    return false;
  }
  return true;
}

const char *descrOf(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "<f4";
  case DType::F16:
    return "<f2";
  case DType::I64:
    return "<i8";
  case DType::I32:
    return "<i4";
  case DType::Bool:
    return "|b1";
  case DType::F64:
    return "<f8";
  case DType::BF16:
    break;
  }
  return nullptr;
}

} // namespace

Status parseNpy(const std::string &bytes, const std::string &source,
                HostTensor &out) {
  auto bad = [&](const std::string &what) {
    return Status::error("'" + source + "' " + what);
  };
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, 6) != 0)
    return bad("is not a .npy file (bad magic); write it with numpy.save");
  int major = static_cast<unsigned char>(bytes[6]);
  size_t headerLen, headerStart;
  if (major == 1) {
    headerLen =
        static_cast<unsigned char>(bytes[8]) |
        (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    headerStart = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12)
      return bad("is truncated (in its header)");
    headerLen = 0;
    for (int i = 0; i < 4; ++i)
      headerLen |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i]))
                   << (8 * i);
    headerStart = 12;
  } else {
    return bad("has .npy format version " + std::to_string(major) +
               ", which this reader does not know (it reads 1.0-3.0)");
  }
  if (bytes.size() < headerStart + headerLen)
    return bad("is truncated (in its header)");
  std::string header = bytes.substr(headerStart, headerLen);

  HeaderParser p{header};
  std::string descr;
  bool fortran = false, haveDescr = false, haveShape = false;
  std::vector<int64_t> shape;
  if (!p.consume('{'))
    return bad("has a malformed header: " + header);
  while (!p.consume('}')) {
    std::string key;
    if (!p.quoted(key) || !p.consume(':'))
      return bad("has a malformed header: " + header);
    if (key == "descr") {
      if (!p.quoted(descr))
        return bad("has a structured element type, which the runtime does not "
                   "support; save a plain array");
      haveDescr = true;
    } else if (key == "fortran_order") {
      std::string v;
      if (!p.word(v) || (v != "True" && v != "False"))
        return bad("has a malformed header: " + header);
      fortran = v == "True";
    } else if (key == "shape") {
      if (!p.tuple(shape))
        return bad("has a malformed shape in its header: " + header);
      haveShape = true;
    } else {
      return bad("has an unknown header key '" + key + "'");
    }
    if (!p.consume(',')) {
      if (!p.consume('}'))
        return bad("has a malformed header: " + header);
      break;
    }
  }
  if (!haveDescr || !haveShape)
    return bad("has a header without 'descr' or 'shape': " + header);
  std::string why;
  if (!dtypeOfDescr(descr, out.dtype, why))
    return bad(why);
  int64_t need;
  if (!tensorBytes(shape, out.dtype, need))
    return bad("has an invalid shape " + formatShape(shape));
  if (fortran && shape.size() > 1)
    return bad("is in Fortran order; save it in C order: "
               "np.save(path, np.ascontiguousarray(arr))");
  size_t dataStart = headerStart + headerLen;
  size_t have = bytes.size() - dataStart;
  if (static_cast<int64_t>(have) != need)
    return bad("holds " + std::to_string(have) + " bytes of data, but a " +
               dtypeName(out.dtype) + formatShape(shape) + " array needs " +
               std::to_string(need) + " (truncated or corrupt)");
  out.shape = std::move(shape);
  out.data = bytes.substr(dataStart);
  if (out.dtype == DType::Bool)
    for (char &c : out.data)
      c = c ? 1 : 0;
  return Status::ok();
}

Status readNpy(const std::string &path, HostTensor &out) {
  std::string bytes, why;
  if (!readWholeFile(path, bytes, why))
    return Status::error(why);
  return parseNpy(bytes, path, out);
}

Status encodeNpy(DType dtype, const std::vector<int64_t> &shape,
                 const void *data, size_t bytes, std::string &out) {
  const char *descr = descrOf(dtype);
  if (!descr)
    return Status::error(std::string("NumPy has no ") + dtypeName(dtype) +
                         " type; convert the tensor to float32 first");
  int64_t need;
  if (!tensorBytes(shape, dtype, need) || static_cast<int64_t>(bytes) != need)
    return Status::error("encodeNpy: " + std::to_string(bytes) +
                         " bytes do not match " + dtypeName(dtype) +
                         formatShape(shape));
  std::string dims;
  for (int64_t d : shape)
    dims += std::to_string(d) + ", ";
  if (shape.size() > 1)
    dims.resize(dims.size() - 2); // "(2, 3)" but "(5,)"
  else if (shape.size() == 1)
    dims.resize(dims.size() - 1);
  std::string header = std::string("{'descr': '") + descr +
                       "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Version 1.0 holds headers up to 65535 bytes; longer ones need 2.0.
  bool v2 = header.size() + 1 + 10 > 65535;
  size_t prefix = v2 ? 12 : 10;
  size_t total = (prefix + header.size() + 1 + 63) / 64 * 64;
  header.append(total - prefix - header.size() - 1, ' ');
  header.push_back('\n');

  out.assign(kMagic, 6);
  out.push_back(static_cast<char>(v2 ? 2 : 1));
  out.push_back(0);
  size_t len = header.size();
  for (int i = 0; i < (v2 ? 4 : 2); ++i)
    out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  out += header;
  if (bytes)
    out.append(static_cast<const char *>(data), bytes);
  return Status::ok();
}

Status writeNpy(const std::string &path, DType dtype,
                const std::vector<int64_t> &shape, const void *data,
                size_t bytes) {
  std::string encoded;
  if (Status s = encodeNpy(dtype, shape, data, bytes, encoded); !s)
    return s;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    return Status::error("cannot write '" + path +
                         "': " + std::strerror(errno));
  out.write(encoded.data(), static_cast<std::streamsize>(encoded.size()));
  out.flush();
  if (!out)
    return Status::error("cannot write '" + path +
                         "' (disk full?): " + std::strerror(errno));
  return Status::ok();
}

} // namespace colossal::rt
