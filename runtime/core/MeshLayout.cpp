//===- MeshLayout.cpp - Ranks, coordinates and pieces of a mesh -----------===//

#include "runtime/core/MeshLayout.h"

namespace colossal::rt {

MeshLayout::MeshLayout(const plan::Mesh &mesh)
    : names_(mesh.axis_names().begin(), mesh.axis_names().end()),
      sizes_(mesh.axis_sizes().begin(), mesh.axis_sizes().end()) {}

int64_t MeshLayout::numRanks() const {
  int64_t n = 1;
  for (int64_t s : sizes_)
    n *= s;
  return n;
}

std::string MeshLayout::describe() const {
  if (numRanks() == 1)
    return "one device";
  std::string s;
  for (size_t i = 0; i < names_.size(); ++i)
    s += (i ? " x " : "") + names_[i] + "=" + std::to_string(sizes_[i]);
  return s.empty() ? "one device" : s;
}

int MeshLayout::axisIndex(const std::string &name) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name)
      return static_cast<int>(i);
  return -1;
}

std::vector<int64_t> MeshLayout::coordinates(int rank) const {
  std::vector<int64_t> c(sizes_.size());
  int64_t r = rank;
  for (size_t i = sizes_.size(); i-- > 0;) {
    c[i] = r % sizes_[i];
    r /= sizes_[i];
  }
  return c;
}

Status MeshLayout::group(int rank, const std::vector<std::string> &axes,
                         std::vector<int> &members, int &position) const {
  std::vector<int> idx;
  for (const std::string &a : axes) {
    int i = axisIndex(a);
    if (i < 0)
      return Status::error("mesh axis '" + a + "' is not in the plan's mesh (" +
                           describe() + ")");
    idx.push_back(i);
  }
  std::vector<int64_t> base = coordinates(rank);
  int64_t count = 1;
  for (int i : idx)
    count *= sizes_[i];
  members.clear();
  position = 0;
  for (int64_t k = 0; k < count; ++k) {
    // k in mixed radix over the axes, the first major.
    std::vector<int64_t> c = base;
    int64_t rest = k;
    for (size_t j = idx.size(); j-- > 0;) {
      c[idx[j]] = rest % sizes_[idx[j]];
      rest /= sizes_[idx[j]];
    }
    int64_t r = 0;
    for (size_t i = 0; i < sizes_.size(); ++i)
      r = r * sizes_[i] + c[i];
    if (r == rank)
      position = static_cast<int>(k);
    members.push_back(static_cast<int>(r));
  }
  return Status::ok();
}

Status MeshLayout::pieceOffsets(int rank, const plan::Sharding &sharding,
                                const std::vector<int64_t> &pieceShape,
                                std::vector<int64_t> &offsets) const {
  offsets.assign(pieceShape.size(), 0);
  if (sharding.dims_size() > static_cast<int>(pieceShape.size()))
    return Status::error(
        "a sharding lists more dimensions than the tensor has");
  for (int d = 0; d < sharding.dims_size(); ++d) {
    std::vector<std::string> axes(sharding.dims(d).axes().begin(),
                                  sharding.dims(d).axes().end());
    if (axes.empty())
      continue;
    std::vector<int> members;
    int position = 0;
    if (Status s = group(rank, axes, members, position); !s)
      return s;
    offsets[d] = position * pieceShape[d];
  }
  return Status::ok();
}

int MeshLayout::peerAlong(int rank, const std::string &axis,
                          int64_t coordinate) const {
  // The group along `axis` lists its ranks by their coordinate there.
  std::vector<int> members;
  int position = 0;
  if (!group(rank, {axis}, members, position) || coordinate < 0 ||
      coordinate >= static_cast<int64_t>(members.size()))
    return -1;
  return members[static_cast<size_t>(coordinate)];
}

bool MeshLayout::ownsPiece(int rank, const plan::Sharding *sharding,
                           const std::string &stageAxis) const {
  std::vector<bool> used(names_.size(), false);
  if (!stageAxis.empty())
    if (int i = axisIndex(stageAxis); i >= 0)
      used[i] = true;
  if (sharding)
    for (const plan::AxisList &dim : sharding->dims())
      for (const std::string &a : dim.axes())
        if (int i = axisIndex(a); i >= 0)
          used[i] = true;
  std::vector<int64_t> c = coordinates(rank);
  for (size_t i = 0; i < c.size(); ++i)
    if (!used[i] && c[i] != 0)
      return false;
  return true;
}

} // namespace colossal::rt
