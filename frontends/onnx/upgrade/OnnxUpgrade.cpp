//===- OnnxUpgrade.cpp - Old opsets upgraded by ONNX's version converter --===//
//
// Steps: (1) when every operator of the model is defined the same at the
// target opset as at the model's (its schema's since-version did not
// change), the model only relabels its opset; this takes the models of
// opsets below 7 that ONNX's converter cannot start from (an Elu of opset
// 6 is the Elu of opset 13), (2) otherwise the checks the converter
// assumes (values defined before use, element types and tensor data
// valid), and (3) in a child process, since both can still crash on a
// malformed model, ONNX shape inference (best effort: some adapters need
// it, Softmax 12 -> 13) and ONNX's converter.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/upgrade/OnnxUpgrade.h"

#include "onnx/defs/schema.h"
#include "onnx/shape_inference/implementation.h"
#include "onnx/version_converter/convert.h"

#include <cerrno>
#include <csignal>
#include <exception>
#include <fcntl.h>
#include <set>
#include <sys/wait.h>
#include <unistd.h>

namespace {

bool isDefaultDomain(const std::string &domain) {
  return domain.empty() || domain == "ai.onnx";
}

/// The operators of `graph` (and its subgraphs) whose definition at
/// `target` differs from the one at `from`, or that ONNX does not know.
void changedOperators(const ::onnx::GraphProto &graph, int64_t from,
                      int64_t target, std::set<std::string> &changed) {
  for (const auto &node : graph.node()) {
    if (isDefaultDomain(node.domain())) {
      const auto *old = ::onnx::OpSchemaRegistry::Schema(
          node.op_type(), static_cast<int>(from));
      const auto *now = ::onnx::OpSchemaRegistry::Schema(
          node.op_type(), static_cast<int>(target));
      if (!old || !now || old->SinceVersion() != now->SinceVersion())
        changed.insert(node.op_type());
    }
    for (const auto &attr : node.attribute()) {
      if (attr.has_g())
        changedOperators(attr.g(), from, target, changed);
      for (const auto &g : attr.graphs())
        changedOperators(g, from, target, changed);
    }
  }
}

/// What ONNX's converter assumes (it crashes otherwise): every value a node
/// reads or the graph returns is defined before, once, and typed values have
/// a valid element type.
std::string wiringError(const ::onnx::GraphProto &graph) {
  std::set<std::string> defined;
  for (const auto &input : graph.input())
    defined.insert(input.name());
  for (const auto &init : graph.initializer())
    defined.insert(init.name());
  for (int i = 0; i < graph.node_size(); ++i) {
    const auto &node = graph.node(i);
    for (const auto &in : node.input())
      if (!in.empty() && !defined.count(in))
        return "node #" + std::to_string(i) + " (" + node.op_type() +
               ") reads '" + in + "', which nothing defines before it";
    for (const auto &out : node.output())
      if (!out.empty() && !defined.insert(out).second)
        return "node #" + std::to_string(i) + " (" + node.op_type() +
               ") defines '" + out + "' a second time";
  }
  for (const auto &out : graph.output())
    if (!defined.count(out.name()))
      return "graph output '" + out.name() + "' is defined by no node";
  auto badType = [](const ::onnx::ValueInfoProto &v) {
    if (!v.has_type() || !v.type().has_tensor_type())
      return false;
    int32_t t = v.type().tensor_type().elem_type();
    return !::onnx::TensorProto_DataType_IsValid(t) ||
           t == ::onnx::TensorProto::UNDEFINED;
  };
  for (const auto *list :
       {&graph.input(), &graph.output(), &graph.value_info()})
    for (const auto &v : *list)
      if (badType(v))
        return "value '" + v.name() + "' has no valid element type";
  return "";
}

/// Bytes per element of the fixed-size ONNX element types (0: variable or
/// unknown).
size_t elementBytes(int32_t t) {
  switch (t) {
  case ::onnx::TensorProto::FLOAT:
  case ::onnx::TensorProto::INT32:
  case ::onnx::TensorProto::UINT32:
    return 4;
  case ::onnx::TensorProto::DOUBLE:
  case ::onnx::TensorProto::INT64:
  case ::onnx::TensorProto::UINT64:
  case ::onnx::TensorProto::COMPLEX64:
    return 8;
  case ::onnx::TensorProto::COMPLEX128:
    return 16;
  case ::onnx::TensorProto::FLOAT16:
  case ::onnx::TensorProto::BFLOAT16:
  case ::onnx::TensorProto::INT16:
  case ::onnx::TensorProto::UINT16:
    return 2;
  case ::onnx::TensorProto::INT8:
  case ::onnx::TensorProto::UINT8:
  case ::onnx::TensorProto::BOOL:
    return 1;
  default:
    return 0;
  }
}

/// Whether a tensor's data agrees with its type and dims (ONNX's shape
/// inference and converter read it trusting that, and crash otherwise).
std::string tensorError(const ::onnx::TensorProto &t) {
  if (!::onnx::TensorProto_DataType_IsValid(t.data_type()) ||
      t.data_type() == ::onnx::TensorProto::UNDEFINED)
    return "tensor '" + t.name() + "' has no valid element type";
  uint64_t count = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || d > (int64_t{1} << 40))
      return "tensor '" + t.name() + "' has a negative or huge dimension";
    count *= static_cast<uint64_t>(d);
    if (count > (uint64_t{1} << 40))
      return "tensor '" + t.name() + "' is too large";
  }
  if (t.data_location() == ::onnx::TensorProto::EXTERNAL)
    return "";
  size_t bytes = elementBytes(t.data_type());
  if (t.has_raw_data()) {
    if (bytes && t.raw_data().size() != count * bytes)
      return "tensor '" + t.name() + "' holds " +
             std::to_string(t.raw_data().size()) + " bytes of raw data for " +
             std::to_string(count) + " elements";
    return "";
  }
  uint64_t given = static_cast<uint64_t>(
      t.float_data_size() + t.int32_data_size() + t.int64_data_size() +
      t.double_data_size() + t.uint64_data_size() + t.string_data_size());
  if (given != 0 && given != count &&
      !(t.data_type() == ::onnx::TensorProto::COMPLEX64 && given == 2 * count))
    return "tensor '" + t.name() + "' holds " + std::to_string(given) +
           " values for " + std::to_string(count) + " elements";
  return "";
}

/// tensorError of every tensor of `graph` (initializers, tensor
/// attributes) and its subgraphs.
std::string tensorsError(const ::onnx::GraphProto &graph) {
  for (const auto &init : graph.initializer())
    if (std::string e = tensorError(init); !e.empty())
      return e;
  for (const auto &node : graph.node())
    for (const auto &attr : node.attribute()) {
      if (attr.has_t())
        if (std::string e = tensorError(attr.t()); !e.empty())
          return e;
      for (const auto &t : attr.tensors())
        if (std::string e = tensorError(t); !e.empty())
          return e;
      if (attr.has_g())
        if (std::string e = tensorsError(attr.g()); !e.empty())
          return e;
      for (const auto &g : attr.graphs())
        if (std::string e = tensorsError(g); !e.empty())
          return e;
    }
  return "";
}

/// Shape inference and conversion of `model` to `target`: "" and the
/// upgraded model, or why not.
std::string convert(const ::onnx::ModelProto &model, int64_t target,
                    ::onnx::ModelProto &out) {
  try {
    ::onnx::ModelProto inferred = model;
    try {
      ::onnx::shape_inference::InferShapes(inferred);
    } catch (const std::exception &) {
      inferred = model; // the converter may not need the shapes
    }
    out = ::onnx::version_conversion::ConvertVersion(inferred,
                                                     static_cast<int>(target));
    return "";
  } catch (const std::exception &e) {
    std::string what = e.what();
    return what.empty() ? "the converter failed without a reason" : what;
  } catch (...) {
    return "the converter failed without a reason";
  }
}

/// convert() in a child process: ONNX's shape inference and converter
/// trust their input and can crash on a malformed model (a zero stride
/// divides by zero), which must end in a message, not take the compiler
/// down. The child sends back a status byte and the model or the reason.
std::string convertIsolated(const ::onnx::ModelProto &model, int64_t target,
                            ::onnx::ModelProto &out) {
  int fds[2];
  if (pipe(fds) != 0)
    return convert(model, target, out);
  pid_t child = fork();
  if (child < 0) {
    close(fds[0]);
    close(fds[1]);
    return convert(model, target, out);
  }
  if (child == 0) {
    close(fds[0]);
    // A crash here is reported by the parent: no crash handlers inherited
    // from the compiler (or a fuzzer) and no dump on the terminal.
    for (int sig : {SIGSEGV, SIGFPE, SIGBUS, SIGILL, SIGABRT, SIGTRAP})
      signal(sig, SIG_DFL);
    if (int null = open("/dev/null", O_WRONLY); null >= 0)
      dup2(null, STDERR_FILENO);
    ::onnx::ModelProto upgraded;
    std::string why = convert(model, target, upgraded);
    std::string message =
        why.empty() ? "0" + upgraded.SerializeAsString() : "1" + why;
    const char *p = message.data();
    size_t left = message.size();
    while (left > 0) {
      ssize_t n = write(fds[1], p, left);
      if (n <= 0)
        _exit(2);
      p += n;
      left -= static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string message;
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = read(fds[0], buffer, sizeof buffer);
    if (n > 0)
      message.append(buffer, static_cast<size_t>(n));
    else if (n == 0 || errno != EINTR)
      break;
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status))
    return "ONNX's shape inference or version converter crashed on the "
           "model (signal " +
           std::to_string(WTERMSIG(status)) +
           "): the model is malformed (a zero stride, inconsistent shapes)";
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || message.empty())
    return "the version converter's process failed";
  if (message[0] == '1')
    return message.substr(1);
  if (!out.ParseFromString(message.substr(1)))
    return "the converted model could not be read back";
  return "";
}

} // namespace

std::string colossal::onnx_upgrade::upgradeOpset(::onnx::ModelProto &model,
                                                 int64_t target) {
  ::onnx::OperatorSetIdProto *opset = nullptr;
  for (auto &import : *model.mutable_opset_import())
    if (isDefaultDomain(import.domain()))
      opset = &import;
  if (!opset)
    return "the model declares no opset for the default ONNX domain";
  int64_t from = opset->version();
  try {
    std::set<std::string> changed;
    changedOperators(model.graph(), from, target, changed);
    if (changed.empty()) {
      opset->set_version(target);
      return "";
    }
    if (from < kOldestConvertible) {
      std::string list;
      for (const std::string &op : changed)
        list += (list.empty() ? "" : ", ") + op;
      return "opset " + std::to_string(from) + " is older than " +
             std::to_string(kOldestConvertible) +
             ", the oldest ONNX's version converter upgrades, and these "
             "operators changed since: " +
             list;
    }
    // The converter assumes a well-formed model; ONNX's checker is
    // stricter than the format (it wants shapes ONNX makes optional), so
    // what the converter relies on is checked here.
    std::string wiring = wiringError(model.graph());
    if (!wiring.empty())
      return wiring;
    std::string tensors = tensorsError(model.graph());
    if (!tensors.empty())
      return tensors;
    ::onnx::ModelProto upgraded;
    std::string why = convertIsolated(model, target, upgraded);
    if (!why.empty())
      return why;
    model = std::move(upgraded);
    return "";
  } catch (const std::exception &e) {
    std::string what = e.what();
    return what.empty() ? "the converter failed without a reason" : what;
  } catch (...) {
    return "the converter failed without a reason";
  }
}
