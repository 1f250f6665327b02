//===- OnnxTensor.cpp - Tensors from ONNX files ---------------------------===//

#include "runtime/core/OnnxTensor.h"

#include "runtime/core/FileIO.h"
#include "runtime/core/PlanTypes.h"

#include "onnx/onnx_pb.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <unordered_map>

namespace colossal::rt {
namespace {

bool fromOnnxType(int t, DType &out) {
  switch (t) {
  case onnx::TensorProto::FLOAT:
    out = DType::F32;
    return true;
  case onnx::TensorProto::FLOAT16:
    out = DType::F16;
    return true;
  case onnx::TensorProto::BFLOAT16:
    out = DType::BF16;
    return true;
  case onnx::TensorProto::INT64:
    out = DType::I64;
    return true;
  case onnx::TensorProto::INT32:
    out = DType::I32;
    return true;
  case onnx::TensorProto::BOOL:
    out = DType::Bool;
    return true;
  case onnx::TensorProto::DOUBLE:
    out = DType::F64;
    return true;
  default:
    return false;
  }
}

std::string onnxTypeName(int t) {
  if (onnx::TensorProto::DataType_IsValid(t))
    return onnx::TensorProto::DataType_Name(
        static_cast<onnx::TensorProto::DataType>(t));
  return "type " + std::to_string(t);
}

// Copies typed-field values into `out` as `Elem`, checking the count.
template <typename Elem, typename Field>
bool copyTyped(const Field &field, int64_t numel, std::string &out,
               std::string &why) {
  if (static_cast<int64_t>(field.size()) != numel) {
    why = "it holds " + std::to_string(field.size()) + " values for " +
          std::to_string(numel) + " elements";
    return false;
  }
  out.resize(static_cast<size_t>(numel) * sizeof(Elem));
  for (int64_t i = 0; i < numel; ++i) {
    Elem v = static_cast<Elem>(field.Get(static_cast<int>(i)));
    std::memcpy(&out[static_cast<size_t>(i) * sizeof(Elem)], &v, sizeof(Elem));
  }
  return true;
}

// Width in bytes and signedness of an ONNX integer type; false otherwise.
bool integerType(int t, size_t &width, bool &isSigned) {
  switch (t) {
  case onnx::TensorProto::INT8:
    width = 1, isSigned = true;
    return true;
  case onnx::TensorProto::UINT8:
    width = 1, isSigned = false;
    return true;
  case onnx::TensorProto::INT16:
    width = 2, isSigned = true;
    return true;
  case onnx::TensorProto::UINT16:
    width = 2, isSigned = false;
    return true;
  case onnx::TensorProto::INT32:
    width = 4, isSigned = true;
    return true;
  case onnx::TensorProto::UINT32:
    width = 4, isSigned = false;
    return true;
  case onnx::TensorProto::INT64:
    width = 8, isSigned = true;
    return true;
  case onnx::TensorProto::UINT64:
    width = 8, isSigned = false;
    return true;
  default:
    return false;
  }
}

// The tensor's bytes when they are stored raw (raw_data or external data);
// `isRaw` false means they are in a typed field. `bytes` is the size needed.
bool rawBytes(const onnx::TensorProto &t, const std::string &baseDir,
              int64_t bytes, bool &isRaw, std::string &out, std::string &why) {
  isRaw = true;
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    std::string location;
    int64_t offset = 0, length = bytes;
    for (const auto &kv : t.external_data()) {
      if (kv.key() == "location")
        location = kv.value();
      else if (kv.key() == "offset")
        offset = std::strtoll(kv.value().c_str(), nullptr, 10);
      else if (kv.key() == "length")
        length = std::strtoll(kv.value().c_str(), nullptr, 10);
    }
    if (location.empty()) {
      why = "its data is external but names no file";
      return false;
    }
    if (length != bytes) {
      why = "its external data is " + std::to_string(length) +
            " bytes, its type needs " + std::to_string(bytes);
      return false;
    }
    return readFileRange(resolvePath(baseDir, location), offset, length, out,
                         why);
  }
  if (t.has_raw_data()) {
    if (static_cast<int64_t>(t.raw_data().size()) != bytes) {
      why = "its raw data is " + std::to_string(t.raw_data().size()) +
            " bytes, its type needs " + std::to_string(bytes);
      return false;
    }
    out = t.raw_data();
    return true;
  }
  isRaw = false;
  return true;
}

// An integer tensor of any ONNX integer type as `want` (I32 or I64), if every
// value fits.
bool convertIntegers(const onnx::TensorProto &t, const std::string &baseDir,
                     DType want, int64_t numel, HostTensor &out,
                     std::string &why) {
  size_t width = 8;
  bool isSigned = true;
  integerType(t.data_type(), width, isSigned);
  std::string raw;
  bool isRaw;
  if (!rawBytes(t, baseDir, numel * static_cast<int64_t>(width), isRaw, raw,
                why))
    return false;
  int typedCount = 0;
  switch (t.data_type()) {
  case onnx::TensorProto::UINT32:
  case onnx::TensorProto::UINT64:
    typedCount = t.uint64_data_size();
    break;
  case onnx::TensorProto::INT64:
    typedCount = t.int64_data_size();
    break;
  default:
    typedCount = t.int32_data_size();
  }
  if (!isRaw && typedCount != numel) {
    why = "it holds " + std::to_string(typedCount) + " values for " +
          std::to_string(numel) + " elements";
    return false;
  }
  int64_t lo = want == DType::I32 ? INT32_MIN : INT64_MIN;
  int64_t hi = want == DType::I32 ? INT32_MAX : INT64_MAX;
  size_t outWidth = dtypeSize(want);
  out.data.assign(static_cast<size_t>(numel) * outWidth, '\0');
  for (int64_t i = 0; i < numel; ++i) {
    uint64_t bits = 0;
    if (isRaw) {
      for (size_t b = 0; b < width; ++b)
        bits |= static_cast<uint64_t>(static_cast<unsigned char>(
                    raw[static_cast<size_t>(i) * width + b]))
                << (8 * b);
    } else if (t.data_type() == onnx::TensorProto::UINT32 ||
               t.data_type() == onnx::TensorProto::UINT64) {
      bits = t.uint64_data(static_cast<int>(i));
    } else if (t.data_type() == onnx::TensorProto::INT64) {
      bits = static_cast<uint64_t>(t.int64_data(static_cast<int>(i)));
    } else {
      bits = static_cast<uint64_t>(
          static_cast<int64_t>(t.int32_data(static_cast<int>(i))));
    }
    // Sign-extend narrow signed values; reject unsigned ones past int64.
    int64_t v = 0;
    bool fits = true;
    if (isSigned && width < 8) {
      uint64_t sign = uint64_t(1) << (8 * width - 1);
      uint64_t mask = (uint64_t(1) << (8 * width)) - 1;
      bits &= mask;
      v = static_cast<int64_t>((bits ^ sign) - sign);
    } else if (!isSigned && width < 8) {
      v = static_cast<int64_t>(bits & ((uint64_t(1) << (8 * width)) - 1));
    } else if (!isSigned && bits > static_cast<uint64_t>(INT64_MAX)) {
      fits = false;
    } else {
      v = static_cast<int64_t>(bits);
    }
    if (!fits || v < lo || v > hi) {
      why = "its element " + std::to_string(i) + " does not fit " +
            dtypeName(want) + ", the type the plan expects";
      return false;
    }
    if (want == DType::I32) {
      int32_t n = static_cast<int32_t>(v);
      std::memcpy(&out.data[static_cast<size_t>(i) * 4], &n, 4);
    } else {
      std::memcpy(&out.data[static_cast<size_t>(i) * 8], &v, 8);
    }
  }
  out.dtype = want;
  return true;
}

bool tensorFromProto(const onnx::TensorProto &t, const std::string &baseDir,
                     const WantedDType &wanted, HostTensor &out,
                     std::string &why) {
  out.name = t.name();
  out.shape.assign(t.dims().begin(), t.dims().end());
  DType native = DType::F32, want = DType::F32;
  bool known = fromOnnxType(t.data_type(), native);
  bool hasWant = wanted && wanted(t.name(), want);
  size_t width;
  bool isSigned;
  if (hasWant && (!known || native != want)) {
    if ((want == DType::I32 || want == DType::I64) &&
        integerType(t.data_type(), width, isSigned)) {
      int64_t bytes;
      if (!tensorBytes(out.shape, want, bytes)) {
        why = "it has an invalid shape " + formatShape(out.shape);
        return false;
      }
      return convertIntegers(t, baseDir, want,
                             bytes / static_cast<int64_t>(dtypeSize(want)), out,
                             why);
    }
    if ((want == DType::BF16 || want == DType::F16) &&
        t.data_type() == onnx::TensorProto::UINT16) {
      native = want; // 16-bit patterns, read like float16/bfloat16 below
      known = true;
    }
  }
  if (!known) {
    why = "it has element type " + onnxTypeName(t.data_type()) +
          ", which the runtime does not support (supported: FLOAT, FLOAT16, "
          "BFLOAT16, DOUBLE, INT64, INT32, BOOL)";
    return false;
  }
  out.dtype = native;
  int64_t bytes;
  if (!tensorBytes(out.shape, out.dtype, bytes)) {
    why = "it has an invalid shape " + formatShape(out.shape);
    return false;
  }
  int64_t numel = bytes / static_cast<int64_t>(dtypeSize(out.dtype));

  bool isRaw;
  if (!rawBytes(t, baseDir, bytes, isRaw, out.data, why))
    return false;
  if (isRaw)
    return true;
  switch (out.dtype) {
  case DType::F32:
    return copyTyped<float>(t.float_data(), numel, out.data, why);
  case DType::F16:
  case DType::BF16: // the 16 bits of each value, stored in int32_data
    return copyTyped<uint16_t>(t.int32_data(), numel, out.data, why);
  case DType::Bool: {
    if (!copyTyped<uint8_t>(t.int32_data(), numel, out.data, why))
      return false;
    for (char &c : out.data)
      c = c ? 1 : 0;
    return true;
  }
  case DType::I32:
    return copyTyped<int32_t>(t.int32_data(), numel, out.data, why);
  case DType::I64:
    return copyTyped<int64_t>(t.int64_data(), numel, out.data, why);
  case DType::F64:
    return copyTyped<double>(t.double_data(), numel, out.data, why);
  }
  why = "it has an unknown element type";
  return false;
}

} // namespace

Status readOnnxTensorFile(const std::string &path, HostTensor &out,
                          const WantedDType &wanted) {
  std::string bytes, why;
  if (!readWholeFile(path, bytes, why))
    return Status::error(why);
  onnx::TensorProto proto;
  if (!proto.ParseFromString(bytes))
    return Status::error("'" + path +
                         "' is not a serialized ONNX TensorProto; give .npy "
                         "files or ONNX test-data .pb files");
  if (!tensorFromProto(proto, directoryOf(path), wanted, out, why))
    return Status::error("cannot read the tensor in '" + path + "': " + why);
  return Status::ok();
}

struct OnnxModelCache::Impl {
  struct Model {
    onnx::ModelProto proto;
    std::unordered_map<std::string, const onnx::TensorProto *> byName;
    std::string error; // why it could not be loaded, if it could not
  };
  std::map<std::string, std::unique_ptr<Model>> models;

  Model &get(const std::string &path) {
    std::unique_ptr<Model> &slot = models[path];
    if (slot)
      return *slot;
    slot = std::make_unique<Model>();
    std::string bytes;
    if (!readWholeFile(path, bytes, slot->error))
      return *slot;
    if (!slot->proto.ParseFromString(bytes)) {
      slot->error = "'" + path +
                    "' is not a readable ONNX model (corrupt, "
                    "or over protobuf's 2 GiB limit: store the weights as "
                    "external data)";
      return *slot;
    }
    for (const onnx::TensorProto &t : slot->proto.graph().initializer())
      slot->byName.emplace(t.name(), &t);
    return *slot;
  }
};

OnnxModelCache::OnnxModelCache() : impl_(std::make_unique<Impl>()) {}
OnnxModelCache::~OnnxModelCache() = default;

bool OnnxModelCache::initializer(const std::string &modelPath,
                                 const std::string &name, HostTensor &out,
                                 std::string &why) {
  Impl::Model &model = impl_->get(modelPath);
  if (!model.error.empty()) {
    why = model.error;
    return false;
  }
  auto it = model.byName.find(name);
  if (it == model.byName.end()) {
    why = "'" + modelPath + "' has no initializer named '" + name + "'";
    return false;
  }
  if (!tensorFromProto(*it->second, directoryOf(modelPath), {}, out, why)) {
    why = "initializer '" + name + "' in '" + modelPath + "': " + why;
    return false;
  }
  return true;
}

namespace {
int onnxDataType(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return onnx::TensorProto::FLOAT;
  case DType::F16:
    return onnx::TensorProto::FLOAT16;
  case DType::BF16:
    return onnx::TensorProto::BFLOAT16;
  case DType::I64:
    return onnx::TensorProto::INT64;
  case DType::I32:
    return onnx::TensorProto::INT32;
  case DType::Bool:
    return onnx::TensorProto::BOOL;
  case DType::F64:
    return onnx::TensorProto::DOUBLE;
  }
  return onnx::TensorProto::UNDEFINED;
}

/// Makes `t` hold `host` as raw data (no typed fields, no external data).
void setRaw(onnx::TensorProto &t, const HostTensor &host) {
  t.clear_float_data();
  t.clear_int32_data();
  t.clear_int64_data();
  t.clear_double_data();
  t.clear_uint64_data();
  t.clear_string_data();
  t.clear_external_data();
  t.clear_data_location();
  t.set_data_type(onnxDataType(host.dtype));
  t.clear_dims();
  for (int64_t d : host.shape)
    t.add_dims(d);
  t.set_raw_data(host.data);
}
} // namespace

Status exportOnnxModel(const std::string &sourceModel,
                       const std::map<std::string, const HostTensor *> &given,
                       const std::string &outPath, int64_t &replaced,
                       int64_t externalAbove,
                       const std::map<std::string, std::string> &derived) {
  // Derived initializers join the weights, computed from them.
  std::map<std::string, const HostTensor *> weights = given;
  std::vector<HostTensor> computed;
  computed.reserve(derived.size());
  for (const auto &[name, how] : derived) {
    const std::string prefix = "transpose:";
    auto from = given.find(how.substr(prefix.size()));
    if (how.rfind(prefix, 0) != 0 || from == given.end() ||
        from->second->shape.size() != 2)
      return Status::error("cannot export '" + name + "': it is '" + how +
                           "', which names no 2-D trained weight; recompile");
    const HostTensor &w = *from->second;
    HostTensor t;
    t.name = name;
    t.dtype = w.dtype;
    t.shape = {w.shape[1], w.shape[0]};
    size_t e = dtypeSize(w.dtype);
    t.data.resize(w.data.size());
    for (int64_t i = 0; i < w.shape[0]; ++i)
      for (int64_t j = 0; j < w.shape[1]; ++j)
        std::memcpy(&t.data[(j * w.shape[0] + i) * e],
                    &w.data[(i * w.shape[1] + j) * e], e);
    computed.push_back(std::move(t));
    weights[name] = &computed.back();
  }
  std::string bytes, why;
  if (!readWholeFile(sourceModel, bytes, why))
    return Status::error(
        "cannot export: the source model is unreadable: " + why +
        "; the plan's model must stay where it was "
        "compiled from (relative to the plan)");
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes))
    return Status::error("cannot export: '" + sourceModel +
                         "' is not a readable ONNX model");
  bytes.clear();
  std::string sourceDir = directoryOf(sourceModel);
  replaced = 0;
  std::map<std::string, bool> used;
  for (const auto &w : weights)
    used[w.first] = false;

  // New values, and every initializer made self-contained.
  int64_t total = 0;
  for (onnx::TensorProto &t : *model.mutable_graph()->mutable_initializer()) {
    auto it = weights.find(t.name());
    if (it != weights.end()) {
      const HostTensor &w = *it->second;
      std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
      if (dims != w.shape || t.data_type() != onnxDataType(w.dtype))
        return Status::error(
            "cannot export weight '" + t.name() + "': it is " +
            dtypeName(w.dtype) + formatShape(w.shape) +
            " but the model's initializer has shape " + formatShape(dims) +
            " and ONNX type " + onnxTypeName(t.data_type()) +
            "; export with the model the plan was compiled from");
      setRaw(t, w);
      used[t.name()] = true;
      ++replaced;
    } else if (t.data_location() == onnx::TensorProto::EXTERNAL) {
      HostTensor host;
      if (!tensorFromProto(t, sourceDir, {}, host, why))
        return Status::error("cannot export: initializer '" + t.name() +
                             "' of '" + sourceModel + "': " + why);
      setRaw(t, host);
    }
    total += static_cast<int64_t>(t.raw_data().size());
  }
  // A weight named after an Identity of an initializer (torch's exporter
  // shares equal initializers that way; training untied them) becomes an
  // initializer of its own in place of the Identity.
  std::map<std::string, const onnx::TensorProto *> initializers;
  for (const onnx::TensorProto &t : model.graph().initializer())
    initializers[t.name()] = &t;
  std::vector<int> untied;
  std::vector<onnx::TensorProto> added;
  for (int i = 0; i < model.graph().node_size(); ++i) {
    const onnx::NodeProto &node = model.graph().node(i);
    if (node.op_type() != "Identity" || node.input_size() != 1 ||
        node.output_size() != 1 || !initializers.count(node.input(0)))
      continue;
    auto w = weights.find(node.output(0));
    if (w == weights.end() || used[w->first])
      continue;
    const onnx::TensorProto &from = *initializers[node.input(0)];
    std::vector<int64_t> dims(from.dims().begin(), from.dims().end());
    if (dims != w->second->shape ||
        from.data_type() != onnxDataType(w->second->dtype))
      return Status::error("cannot export weight '" + w->first +
                           "': it does not match the initializer '" +
                           from.name() + "' it was copied from");
    onnx::TensorProto t;
    t.set_name(w->first);
    setRaw(t, *w->second);
    total += static_cast<int64_t>(t.raw_data().size());
    added.push_back(std::move(t));
    untied.push_back(i);
    used[w->first] = true;
    ++replaced;
  }
  for (auto it = untied.rbegin(); it != untied.rend(); ++it)
    model.mutable_graph()->mutable_node()->DeleteSubrange(*it, 1);
  for (onnx::TensorProto &t : added)
    *model.mutable_graph()->add_initializer() = std::move(t);

  for (const auto &u : used)
    if (!u.second)
      return Status::error("cannot export weight '" + u.first + "': '" +
                           sourceModel + "' has no initializer of that name");

  // The copy is for inference: training-mode batch norms and dropout (from
  // torch's TRAINING exports) become their inference forms.
  for (onnx::NodeProto &node : *model.mutable_graph()->mutable_node()) {
    if (node.op_type() == "BatchNormalization") {
      for (onnx::AttributeProto &a : *node.mutable_attribute())
        if (a.name() == "training_mode")
          a.set_i(0);
      while (node.output_size() > 1)
        node.mutable_output()->RemoveLast();
    } else if (node.op_type() == "Dropout" && node.input_size() > 2) {
      while (node.input_size() > 2)
        node.mutable_input()->RemoveLast();
    }
  }

  // Large models keep their bytes in OUT.data (protobuf's 2 GiB limit).
  std::string tmp = outPath + ".tmp";
  std::string dataName;
  int64_t large = 0;
  for (const onnx::TensorProto &t : model.graph().initializer())
    if (t.raw_data().size() >= 1024)
      ++large;
  if (total > externalAbove && large > 0) {
    dataName = outPath.substr(outPath.find_last_of('/') + 1) + ".data";
    std::string dataTmp = outPath + ".data.tmp";
    std::FILE *f = std::fopen(dataTmp.c_str(), "wb");
    if (!f)
      return Status::error("cannot write '" + dataTmp +
                           "': " + std::strerror(errno));
    int64_t offset = 0;
    for (onnx::TensorProto &t : *model.mutable_graph()->mutable_initializer()) {
      if (t.raw_data().size() < 1024)
        continue;
      const std::string &raw = t.raw_data();
      if (std::fwrite(raw.data(), 1, raw.size(), f) != raw.size()) {
        std::fclose(f);
        std::remove(dataTmp.c_str());
        return Status::error("cannot write '" + dataTmp +
                             "': " + std::strerror(errno));
      }
      int64_t length = static_cast<int64_t>(raw.size());
      t.clear_raw_data();
      t.set_data_location(onnx::TensorProto::EXTERNAL);
      auto add = [&](const char *key, const std::string &value) {
        auto *e = t.add_external_data();
        e->set_key(key);
        e->set_value(value);
      };
      add("location", dataName);
      add("offset", std::to_string(offset));
      add("length", std::to_string(length));
      offset += length;
    }
    if (std::fclose(f) != 0 ||
        std::rename(dataTmp.c_str(), (outPath + ".data").c_str()) != 0) {
      std::remove(dataTmp.c_str());
      return Status::error("cannot write '" + outPath +
                           ".data': " + std::strerror(errno));
    }
  }
  std::string out;
  if (!model.SerializeToString(&out))
    return Status::error("cannot serialize the exported model (over "
                         "protobuf's 2 GiB limit)");
  std::FILE *f = std::fopen(tmp.c_str(), "wb");
  if (!f)
    return Status::error("cannot write '" + tmp + "': " + std::strerror(errno));
  bool ok = std::fwrite(out.data(), 1, out.size(), f) == out.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), outPath.c_str()) != 0) {
    std::remove(tmp.c_str());
    if (!dataName.empty())
      std::remove((outPath + ".data").c_str());
    return Status::error("cannot write '" + outPath +
                         "': " + std::strerror(errno));
  }
  // An earlier export's OUT.data is left alone: it may be another model's
  // external data, and deleting a user's file is worse than a stale one.
  return Status::ok();
}

} // namespace colossal::rt
