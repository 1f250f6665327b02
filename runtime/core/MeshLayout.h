//===- MeshLayout.h - Ranks, coordinates and pieces of a mesh ---*- C++ -*-===//
//
// A plan's mesh as the runtime uses it: which coordinates a global rank has
// (row-major over the axes, the last fastest), which ranks form the group of
// a collective over some axes, and where this rank's piece of a sharded
// tensor starts. The compiler lays programs out by the same rules.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_MESHLAYOUT_H
#define COLOSSAL_RUNTIME_CORE_MESHLAYOUT_H

#include "runtime/core/Types.h"
#include "runtime/proto/plan.pb.h"

#include <string>
#include <vector>

namespace colossal::rt {

class MeshLayout {
public:
  explicit MeshLayout(const plan::Mesh &mesh);

  int64_t numRanks() const;
  /// "dp=2 x tp=2", for messages.
  std::string describe() const;
  /// Index of axis `name`, or -1.
  int axisIndex(const std::string &name) const;

  /// The ranks that share every coordinate of `rank` except those along
  /// `axes`, in group order (mixed radix over `axes`, the first major), and
  /// the position of `rank` among them. Unknown axes are an error.
  Status group(int rank, const std::vector<std::string> &axes,
               std::vector<int> &members, int &position) const;

  /// Where `rank`'s piece of a tensor split as `sharding` starts, given the
  /// piece's shape.
  Status pieceOffsets(int rank, const plan::Sharding &sharding,
                      const std::vector<int64_t> &pieceShape,
                      std::vector<int64_t> &offsets) const;

  /// Whether `rank` is the one that writes its piece of a tensor split as
  /// `sharding` (null: whole on every rank): ranks holding the same piece
  /// differ only along axes the sharding does not use; the one at 0 on all
  /// of those writes.
  /// A pipeline's stages (axis `stageAxis`, when not empty) hold different
  /// tensors: a rank of any stage that holds the tensor writes it (two
  /// stages holding one, a tied weight, write the same bytes).
  bool ownsPiece(int rank, const plan::Sharding *sharding,
                 const std::string &stageAxis = "") const;

  /// The rank with coordinate `coordinate` along `axis` and `rank`'s other
  /// coordinates; -1 if the axis is unknown or the coordinate outside it.
  int peerAlong(int rank, const std::string &axis, int64_t coordinate) const;

private:
  std::vector<int64_t> coordinates(int rank) const;

  std::vector<std::string> names_;
  std::vector<int64_t> sizes_;
};

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_MESHLAYOUT_H
