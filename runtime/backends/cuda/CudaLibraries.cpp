//===- CudaLibraries.cpp - dlopen of cuBLASLt and NCCL --------------------===//

#include "runtime/backends/cuda/CudaLibraries.h"

#include <dlfcn.h>

#include <mutex>
#include <string>
#include <vector>

namespace colossal::rt::cuda {
namespace {

/// Opens the first of `names` that loads; `tried` collects dlopen's
/// messages for the error.
void *openFirst(const std::vector<const char *> &names, std::string &tried) {
  for (const char *name : names) {
    if (void *handle = ::dlopen(name, RTLD_NOW | RTLD_LOCAL))
      return handle;
    const char *why = ::dlerror();
    tried += std::string("\n  ") + name + ": " + (why ? why : "not found");
  }
  return nullptr;
}

template <class Table>
Status loadTable(const char *what, const std::vector<const char *> &names,
                 const char *install,
                 void (*fill)(void *, Table &, std::string &), Table &table) {
  std::string tried;
  void *handle = openFirst(names, tried);
  if (!handle)
    return Status::error(std::string("cannot load ") + what + ":" + tried +
                         "\ninstall " + install +
                         " or add its directory to LD_LIBRARY_PATH");
  std::string missing;
  fill(handle, table, missing);
  if (!missing.empty())
    return Status::error(std::string(what) + " loaded from " + names[0] +
                         " lacks the entry points" + missing +
                         "; it is older than the one Colossal was built "
                         "against: install a newer " +
                         install);
  return Status::ok();
}

template <class Fn>
void bind(void *handle, const char *name, Fn &fn, std::string &missing) {
  fn = reinterpret_cast<Fn>(::dlsym(handle, name));
  if (!fn)
    missing += std::string(" ") + name;
}

void fillCublasLt(void *handle, CublasLt &t, std::string &missing) {
#define COLOSSAL_BIND(name) bind(handle, #name, t.name, missing);
  COLOSSAL_CUBLASLT_SYMBOLS(COLOSSAL_BIND)
#undef COLOSSAL_BIND
}

void fillNccl(void *handle, Nccl &t, std::string &missing) {
#define COLOSSAL_BIND(name) bind(handle, #name, t.name, missing);
  COLOSSAL_NCCL_SYMBOLS(COLOSSAL_BIND)
#undef COLOSSAL_BIND
}

} // namespace

Status loadCublasLt(const CublasLt *&out) {
  static CublasLt table;
  static Status status;
  static std::once_flag once;
  std::call_once(once, [] {
    status = loadTable("cuBLASLt", {"libcublasLt.so.13", "libcublasLt.so"},
                       "the CUDA 13 cuBLAS libraries (libcublasLt.so.13)",
                       &fillCublasLt, table);
  });
  out = status ? &table : nullptr;
  return status;
}

Status loadNccl(const Nccl *&out) {
  static Nccl table;
  static Status status;
  static std::once_flag once;
  std::call_once(once, [] {
    status = loadTable("NCCL", {"libnccl.so.2", "libnccl.so"},
                       "NCCL 2 (libnccl.so.2)", &fillNccl, table);
  });
  out = status ? &table : nullptr;
  return status;
}

} // namespace colossal::rt::cuda
