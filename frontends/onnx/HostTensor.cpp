//===- HostTensor.cpp - Compile-time tensors of the ONNX importer ---------===//
//
// Reading TensorProtos into host constants, rounding folded values to their
// element type, and materializing constants as cg.constant ops.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/ImportContext.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/Support/Endian.h"

#include <cmath>
#include <cstring>

using namespace mlir;
using namespace mlir::colossal;
using namespace mlir::colossal::onnx;

Type mlir::colossal::onnx::elementTypeOf(MLIRContext *context,
                                         int32_t onnxType) {
  Builder b(context);
  switch (onnxType) {
  case ::onnx::TensorProto::FLOAT:
    return b.getF32Type();
  case ::onnx::TensorProto::FLOAT16:
    return b.getF16Type();
  case ::onnx::TensorProto::BFLOAT16:
    return b.getBF16Type();
  case ::onnx::TensorProto::DOUBLE:
    return b.getF64Type();
  case ::onnx::TensorProto::INT64:
  case ::onnx::TensorProto::UINT64:
    return b.getI64Type();
  case ::onnx::TensorProto::INT32:
  case ::onnx::TensorProto::UINT32:
    return b.getI32Type();
  case ::onnx::TensorProto::INT16:
  case ::onnx::TensorProto::UINT16:
    return b.getIntegerType(16);
  case ::onnx::TensorProto::INT8:
  case ::onnx::TensorProto::UINT8:
    return b.getIntegerType(8);
  case ::onnx::TensorProto::BOOL:
    return b.getI1Type();
  default:
    return nullptr;
  }
}

std::string mlir::colossal::onnx::onnxTypeName(int32_t onnxType) {
  if (::onnx::TensorProto::DataType_IsValid(onnxType))
    return ::onnx::TensorProto::DataType_Name(
        static_cast<::onnx::TensorProto::DataType>(onnxType));
  return "data type " + std::to_string(onnxType);
}

double mlir::colossal::onnx::roundToType(double value, Type type) {
  if (type.isF64() || std::isnan(value))
    return value;
  if (type.isF32())
    return static_cast<double>(static_cast<float>(value));
  llvm::APFloat f(value);
  bool lost;
  f.convert(cast<FloatType>(type).getFloatSemantics(),
            llvm::APFloat::rmNearestTiesToEven, &lost);
  return f.convertToDouble();
}

std::vector<int64_t> HostTensor::toInts() const {
  std::vector<int64_t> out(size());
  for (int64_t i = 0; i < size(); ++i)
    out[i] = intAt(i);
  return out;
}

HostTensor HostTensor::expanded() const {
  if (!splat)
    return *this;
  HostTensor t = *this;
  t.splat = false;
  if (isFloat())
    t.floats.assign(size(), floats.empty() ? 0.0 : floats[0]);
  else
    t.ints.assign(size(), ints.empty() ? 0 : ints[0]);
  return t;
}

HostTensor HostTensor::ofInts(Type elementType, Shape shape,
                              std::vector<int64_t> values) {
  HostTensor t;
  t.elementType = elementType;
  t.shape = std::move(shape);
  if (isa<FloatType>(elementType)) {
    for (int64_t v : values)
      t.floats.push_back(roundToType(static_cast<double>(v), elementType));
  } else {
    t.ints = std::move(values);
  }
  return t;
}

HostTensor HostTensor::ofFloats(Type elementType, Shape shape,
                                std::vector<double> values) {
  HostTensor t;
  t.elementType = elementType;
  t.shape = std::move(shape);
  if (isa<FloatType>(elementType)) {
    for (double v : values)
      t.floats.push_back(roundToType(v, elementType));
  } else {
    for (double v : values)
      t.ints.push_back(elementType.isInteger(1) ? (v != 0)
                                                : static_cast<int64_t>(v));
  }
  return t;
}

/// Decodes an IEEE half or bfloat16 bit pattern.
static double fromBits16(uint16_t bits, Type type) {
  return llvm::APFloat(cast<FloatType>(type).getFloatSemantics(),
                       llvm::APInt(16, bits))
      .convertToDouble();
}

FailureOr<HostTensor>
mlir::colossal::onnx::hostTensorFromProto(MLIRContext *context,
                                          const ::onnx::TensorProto &proto,
                                          std::string &error) {
  if (proto.data_location() == ::onnx::TensorProto::EXTERNAL) {
    error = "its data is external, but the importer needs its value";
    return failure();
  }
  Type element = elementTypeOf(context, proto.data_type());
  if (!element) {
    error =
        "element type " + onnxTypeName(proto.data_type()) + " is not supported";
    return failure();
  }
  HostTensor t;
  t.elementType = element;
  for (int64_t d : proto.dims()) {
    if (d < 0) {
      error = "negative dimension";
      return failure();
    }
    t.shape.push_back(d);
  }
  int64_t n = t.size();
  const std::string &raw = proto.raw_data();
  bool hasRaw = proto.has_raw_data();
  int32_t type = proto.data_type();
  unsigned width = 0;
  switch (type) {
  case ::onnx::TensorProto::DOUBLE:
  case ::onnx::TensorProto::INT64:
  case ::onnx::TensorProto::UINT64:
    width = 8;
    break;
  case ::onnx::TensorProto::FLOAT:
  case ::onnx::TensorProto::INT32:
  case ::onnx::TensorProto::UINT32:
    width = 4;
    break;
  case ::onnx::TensorProto::FLOAT16:
  case ::onnx::TensorProto::BFLOAT16:
  case ::onnx::TensorProto::INT16:
  case ::onnx::TensorProto::UINT16:
    width = 2;
    break;
  default:
    width = 1;
  }
  int64_t available = 0;
  if (hasRaw)
    available = static_cast<int64_t>(raw.size()) / width;
  else if (type == ::onnx::TensorProto::FLOAT)
    available = proto.float_data_size();
  else if (type == ::onnx::TensorProto::DOUBLE)
    available = proto.double_data_size();
  else if (type == ::onnx::TensorProto::INT64)
    available = proto.int64_data_size();
  else if (type == ::onnx::TensorProto::UINT64 ||
           type == ::onnx::TensorProto::UINT32)
    available = proto.uint64_data_size();
  else
    available = proto.int32_data_size();
  if (available != n ||
      (hasRaw && static_cast<int64_t>(raw.size()) != n * width)) {
    error = "holds " + std::to_string(available) +
            " values but its shape needs " + std::to_string(n);
    return failure();
  }
  const char *p = raw.data();
  for (int64_t i = 0; i < n; ++i) {
    const char *q = p + i * width;
    switch (type) {
    case ::onnx::TensorProto::FLOAT: {
      float f;
      if (hasRaw)
        std::memcpy(&f, q, 4);
      else
        f = proto.float_data(i);
      t.floats.push_back(f);
      break;
    }
    case ::onnx::TensorProto::DOUBLE: {
      double d;
      if (hasRaw)
        std::memcpy(&d, q, 8);
      else
        d = proto.double_data(i);
      t.floats.push_back(d);
      break;
    }
    case ::onnx::TensorProto::FLOAT16:
    case ::onnx::TensorProto::BFLOAT16: {
      uint16_t bits = hasRaw ? llvm::support::endian::read16le(q)
                             : static_cast<uint16_t>(proto.int32_data(i));
      t.floats.push_back(fromBits16(bits, element));
      break;
    }
    case ::onnx::TensorProto::INT64:
      t.ints.push_back(
          hasRaw ? static_cast<int64_t>(llvm::support::endian::read64le(q))
                 : proto.int64_data(i));
      break;
    case ::onnx::TensorProto::UINT64:
      t.ints.push_back(
          hasRaw ? static_cast<int64_t>(llvm::support::endian::read64le(q))
                 : static_cast<int64_t>(proto.uint64_data(i)));
      break;
    case ::onnx::TensorProto::INT32:
      t.ints.push_back(
          hasRaw ? static_cast<int32_t>(llvm::support::endian::read32le(q))
                 : proto.int32_data(i));
      break;
    case ::onnx::TensorProto::UINT32:
      t.ints.push_back(hasRaw ? llvm::support::endian::read32le(q)
                              : static_cast<int64_t>(proto.uint64_data(i)));
      break;
    case ::onnx::TensorProto::INT16:
      t.ints.push_back(
          hasRaw ? static_cast<int16_t>(llvm::support::endian::read16le(q))
                 : proto.int32_data(i));
      break;
    case ::onnx::TensorProto::UINT16:
      t.ints.push_back(hasRaw ? llvm::support::endian::read16le(q)
                              : proto.int32_data(i));
      break;
    case ::onnx::TensorProto::INT8:
      t.ints.push_back(hasRaw ? static_cast<int8_t>(*q) : proto.int32_data(i));
      break;
    case ::onnx::TensorProto::UINT8:
      t.ints.push_back(hasRaw ? static_cast<uint8_t>(*q) : proto.int32_data(i));
      break;
    case ::onnx::TensorProto::BOOL:
      t.ints.push_back((hasRaw ? *q : proto.int32_data(i)) != 0);
      break;
    default:
      error = "element type " + onnxTypeName(type) + " is not supported";
      return failure();
    }
  }
  return t;
}

Value mlir::colossal::onnx::materializeConstant(OpBuilder &builder,
                                                Location loc,
                                                const HostTensor &tensor) {
  Type element = tensor.elementType;
  bool supported = element.isF32() || element.isF16() || element.isBF16() ||
                   element.isF64() || element.isInteger(64) ||
                   element.isInteger(32) || element.isInteger(1);
  if (!supported) {
    mlir::emitError(loc) << "a constant of element type " << element
                         << " is used as a tensor value; Colossal computes "
                            "in float32/float16/bfloat16/float64/int64/int32/"
                            "bool";
    return nullptr;
  }
  auto type = RankedTensorType::get(tensor.shape, element);
  int64_t count = tensor.splat ? 1 : tensor.size();
  DenseElementsAttr attr;
  if (auto floatType = dyn_cast<FloatType>(element)) {
    SmallVector<llvm::APFloat> values;
    values.reserve(count);
    for (int64_t i = 0; i < count; ++i) {
      llvm::APFloat f(tensor.floatAt(i));
      bool lost;
      f.convert(floatType.getFloatSemantics(),
                llvm::APFloat::rmNearestTiesToEven, &lost);
      values.push_back(f);
    }
    attr = DenseElementsAttr::get(type, values);
  } else if (element.isInteger(1)) {
    SmallVector<bool> values;
    for (int64_t i = 0; i < count; ++i)
      values.push_back(tensor.intAt(i) != 0);
    attr = DenseElementsAttr::get(type, values);
  } else {
    unsigned width = element.getIntOrFloatBitWidth();
    SmallVector<llvm::APInt> values;
    for (int64_t i = 0; i < count; ++i)
      values.push_back(llvm::APInt(width, tensor.intAt(i), /*isSigned=*/true));
    attr = DenseElementsAttr::get(type, values);
  }
  return builder.create<cg::ConstantOp>(loc, attr);
}

HostTensor mlir::colossal::onnx::castHostTensor(const HostTensor &tensor,
                                                Type to) {
  HostTensor out;
  out.elementType = to;
  out.shape = tensor.shape;
  out.splat = tensor.splat;
  int64_t count = tensor.splat ? 1 : tensor.size();
  for (int64_t i = 0; i < count; ++i) {
    if (isa<FloatType>(to)) {
      out.floats.push_back(roundToType(tensor.floatAt(i), to));
    } else if (to.isInteger(1)) {
      out.ints.push_back(tensor.floatAt(i) != 0);
    } else {
      int64_t v = tensor.isFloat()
                      ? static_cast<int64_t>(std::trunc(tensor.floatAt(i)))
                      : tensor.intAt(i);
      unsigned width = to.getIntOrFloatBitWidth();
      if (width < 64) // wrap like a C cast to the narrower type
        v = llvm::APInt(64, v, true).trunc(width).getSExtValue();
      out.ints.push_back(v);
    }
  }
  return out;
}

std::optional<HostTensor> mlir::colossal::onnx::foldElementwise(
    ArrayRef<const HostTensor *> inputs, Type resultType,
    function_ref<double(ArrayRef<double>)> floatFn,
    function_ref<int64_t(ArrayRef<int64_t>)> intFn) {
  Shape shape;
  bool allSplat = true, anyFloat = false;
  for (const HostTensor *in : inputs) {
    auto next = cg::broadcastShapes(shape, in->shape);
    if (!next)
      return std::nullopt;
    shape = *next;
    allSplat &= in->splat || in->size() == 1;
    anyFloat |= in->isFloat();
  }
  int64_t n = cg::numElements(shape);
  if (!allSplat && n > kMaxFoldElements)
    return std::nullopt;
  int64_t count = allSplat ? std::min<int64_t>(n, 1) : n;
  if (allSplat && n == 0)
    count = 0;
  // Strides of each input in the broadcast index space (0 on broadcast dims).
  size_t rank = shape.size();
  std::vector<std::vector<int64_t>> strides;
  for (const HostTensor *in : inputs) {
    std::vector<int64_t> s(rank, 0);
    int64_t stride = 1;
    for (size_t i = 0; i < in->shape.size(); ++i) {
      size_t dim = in->shape.size() - 1 - i;
      size_t outDim = rank - 1 - i;
      s[outDim] = in->shape[dim] == 1 ? 0 : stride;
      stride *= in->shape[dim];
    }
    strides.push_back(std::move(s));
  }
  HostTensor out;
  out.elementType = resultType;
  out.shape = shape;
  out.splat = allSplat && n > 1;
  std::vector<int64_t> index(rank, 0);
  SmallVector<double> fargs(inputs.size());
  SmallVector<int64_t> iargs(inputs.size());
  for (int64_t k = 0; k < count; ++k) {
    for (size_t j = 0; j < inputs.size(); ++j) {
      int64_t offset = 0;
      if (!inputs[j]->splat)
        for (size_t d = 0; d < rank; ++d)
          offset += index[d] * strides[j][d];
      if (anyFloat)
        fargs[j] = inputs[j]->floatAt(offset);
      else
        iargs[j] = inputs[j]->intAt(offset);
    }
    if (anyFloat) {
      double v = floatFn(fargs);
      if (isa<FloatType>(resultType))
        out.floats.push_back(roundToType(v, resultType));
      else
        out.ints.push_back(static_cast<int64_t>(v));
    } else {
      int64_t v = intFn(iargs);
      if (isa<FloatType>(resultType))
        out.floats.push_back(roundToType(static_cast<double>(v), resultType));
      else
        out.ints.push_back(v);
    }
    for (size_t d = rank; d-- > 0;) {
      if (++index[d] < shape[d])
        break;
      index[d] = 0;
    }
  }
  return out;
}
