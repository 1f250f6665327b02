//===- WeightLoader.cpp - Parameter bytes for a rank's buffers ------------===//

#include "runtime/core/WeightLoader.h"

#include "runtime/core/FileIO.h"
#include "runtime/core/Float16.h"
#include "runtime/core/PlanTypes.h"

#include <cstring>
#include <new>

namespace colossal::rt {

void copyBox(const char *src, const std::vector<int64_t> &full,
             const std::vector<int64_t> &offsets,
             const std::vector<int64_t> &box, size_t elemSize, char *dst) {
  size_t rank = full.size();
  if (rank == 0 || numElements(box) == 0) {
    if (rank == 0)
      std::memcpy(dst, src, elemSize);
    return;
  }
  // Row-major strides of the full tensor, in elements.
  std::vector<int64_t> stride(rank, 1);
  for (size_t d = rank - 1; d > 0; --d)
    stride[d - 1] = stride[d] * full[d];
  // Walk every index of the box's outer dimensions; the innermost dimension
  // is one contiguous run.
  size_t run = static_cast<size_t>(box[rank - 1]) * elemSize;
  std::vector<int64_t> idx(rank - 1, 0);
  while (true) {
    int64_t at = offsets[rank - 1];
    for (size_t d = 0; d + 1 < rank; ++d)
      at += (offsets[d] + idx[d]) * stride[d];
    std::memcpy(dst, src + static_cast<size_t>(at) * elemSize, run);
    dst += run;
    size_t d = rank - 1;
    while (d > 0) {
      if (++idx[d - 1] < box[d - 1])
        break;
      idx[d - 1] = 0;
      --d;
    }
    if (d == 0)
      return;
  }
}

WeightLoader::WeightLoader(const plan::Plan &plan, std::string planDir,
                           std::string source)
    : plan_(plan), planDir_(std::move(planDir)), source_(std::move(source)) {}

Status WeightLoader::loadWhole(int index, std::string &out) {
  const plan::Parameter &p = plan_.parameters(index);
  DType dtype = DType::F32;
  toDType(p.type().dtype(), dtype);
  std::vector<int64_t> shape = shapeOf(p.type());
  std::string what = "plan '" + source_ + "': parameter '" + p.name() + "'";
  std::string moveHint =
      "; the plan's weights must be copied with it (relative paths are "
      "resolved from the plan's directory '" +
      planDir_ + "')";

  switch (p.source_case()) {
  case plan::Parameter::kEmbedded:
    out = p.embedded();
    return Status::ok();
  case plan::Parameter::kFill: {
    size_t n = static_cast<size_t>(numElements(shape));
    size_t width = dtypeSize(dtype);
    out.resize(n * width);
    const double d = p.fill();
    float f = static_cast<float>(d);
    uint16_t h = dtype == DType::F16    ? floatToHalf(f)
                 : dtype == DType::BF16 ? floatToBf16(f)
                                        : 0;
    for (size_t i = 0; i < n; ++i)
      std::memcpy(&out[i * width],
                  width == 8   ? static_cast<const void *>(&d)
                  : width == 4 ? static_cast<const void *>(&f)
                               : static_cast<const void *>(&h),
                  width);
    return Status::ok();
  }
  case plan::Parameter::kExternal: {
    const plan::ExternalData &ext = p.external();
    std::string path = resolvePath(planDir_, ext.location());
    std::string why;
    if (!readFileRange(path, ext.offset(), ext.length(), out, why))
      return Status::error(what + ": " + why + moveHint);
    return Status::ok();
  }
  case plan::Parameter::kInitializer: {
    const plan::OnnxInitializer &init = p.initializer();
    std::string path = resolvePath(planDir_, init.model());
    HostTensor t;
    std::string why;
    if (!models_.initializer(path, init.name(), t, why))
      return Status::error(what + ": " + why + moveHint);
    if (t.shape != shape)
      return Status::error(what + ": initializer '" + init.name() + "' in '" +
                           path + "' has shape " + formatShape(t.shape) +
                           " but the plan expects " + formatShape(shape) +
                           "; the model changed since the plan was compiled: "
                           "recompile it");
    if (t.dtype == dtype) {
      out = std::move(t.data);
      return Status::ok();
    }
    if (t.dtype == DType::F32 &&
        (dtype == DType::F16 || dtype == DType::BF16)) {
      size_t n = t.data.size() / 4;
      out.resize(n * 2);
      for (size_t i = 0; i < n; ++i) {
        float f;
        std::memcpy(&f, &t.data[i * 4], 4);
        uint16_t h = dtype == DType::F16 ? floatToHalf(f) : floatToBf16(f);
        std::memcpy(&out[i * 2], &h, 2);
      }
      return Status::ok();
    }
    return Status::error(what + ": initializer '" + init.name() + "' in '" +
                         path + "' is " + dtypeName(t.dtype) +
                         " but the plan expects " + dtypeName(dtype) +
                         "; the model changed since the plan was compiled: "
                         "recompile it");
  }
  case plan::Parameter::SOURCE_NOT_SET:
    break;
  }
  return Status::error(what + " has no source; recompile the model");
}

Status WeightLoader::loadSlice(int index, const std::vector<int64_t> &offsets,
                               const std::vector<int64_t> &shape,
                               std::string &out) {
  try {
    const plan::Parameter &p = plan_.parameters(index);
    std::vector<int64_t> full = shapeOf(p.type());
    bool whole = shape == full;
    if (whole)
      return loadWhole(index, out);
    std::string all;
    if (Status s = loadWhole(index, all); !s)
      return s;
    DType dtype = DType::F32;
    toDType(p.type().dtype(), dtype);
    out.resize(static_cast<size_t>(numElements(shape)) * dtypeSize(dtype));
    std::vector<int64_t> at = offsets;
    if (at.empty())
      at.assign(full.size(), 0);
    copyBox(all.data(), full, at, shape, dtypeSize(dtype),
            out.empty() ? nullptr : &out[0]);
    return Status::ok();
  } catch (const std::bad_alloc &) {
    return Status::error("out of host memory loading parameter '" +
                         plan_.parameters(index).name() + "'");
  }
}

} // namespace colossal::rt
