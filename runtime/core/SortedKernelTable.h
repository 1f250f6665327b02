//===- SortedKernelTable.h - Op name to kernel, for every backend -*- C++
//-*-===//
//
// A backend's kernels as a table sorted by op name once, searched by
// binary search: what the CPU and CUDA kernel registries share. `Entry`
// has `const char *name` and a kernel pointer `fn`.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_SORTEDKERNELTABLE_H
#define COLOSSAL_RUNTIME_CORE_SORTEDKERNELTABLE_H

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace colossal::rt {

template <class Entry> class SortedKernelTable {
public:
  using Fn = decltype(Entry::fn);

  explicit SortedKernelTable(std::vector<Entry> entries)
      : entries_(std::move(entries)) {
    std::sort(entries_.begin(), entries_.end(),
              [](const Entry &a, const Entry &b) {
                return std::string_view(a.name) < std::string_view(b.name);
              });
  }

  /// The kernel for `op`; null if none.
  Fn find(std::string_view op) const {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), op,
                               [](const Entry &e, std::string_view name) {
                                 return std::string_view(e.name) < name;
                               });
    if (it == entries_.end() || std::string_view(it->name) != op)
      return nullptr;
    return it->fn;
  }

  /// Every op name, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const Entry &e : entries_)
      out.emplace_back(e.name);
    return out;
  }

private:
  std::vector<Entry> entries_;
};

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_SORTEDKERNELTABLE_H
