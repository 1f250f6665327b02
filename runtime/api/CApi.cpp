//===- CApi.cpp - The C API over the C++ embedding API --------------------===//
//
// Each entry point checks its pointers, calls the C++ API, turns a failed
// Status into a code plus this thread's last-error message, and catches
// every exception so none unwinds into C.
//
//===----------------------------------------------------------------------===//

#include "runtime/include/colossal/colossal.h"

#include "runtime/comm/Launch.h"
#include "runtime/core/Backend.h"
#include "runtime/include/colossal/Runtime.h"

#include <chrono>
#include <new>
#include <string>

struct colossal_plan {
  std::shared_ptr<colossal::Plan> plan;
};

struct colossal_session {
  std::unique_ptr<colossal::Session> session;
  int32_t rank = 0, size = 1;
};

namespace {

thread_local std::string lastError;

colossal_status_t fail(colossal_status_t code, const std::string &message) {
  lastError = message;
  return code;
}

colossal_status_t succeed() {
  lastError.clear();
  return COLOSSAL_OK;
}

// A failed Status as `code`, unless it reports memory exhaustion.
colossal_status_t fromStatus(const colossal::Status &s,
                             colossal_status_t code) {
  if (s)
    return succeed();
  if (s.message().find("out of host memory") != std::string::npos ||
      s.message().find("out of memory") != std::string::npos)
    code = COLOSSAL_ERROR_OUT_OF_MEMORY;
  return fail(code, s.message());
}

colossal_status_t nullArgument(const char *function, const char *argument) {
  return fail(COLOSSAL_ERROR_INVALID_ARGUMENT,
              std::string(function) + ": '" + argument + "' is null");
}

// Runs `body`, mapping exceptions to codes.
template <typename Body>
colossal_status_t guarded(const char *function, Body body) {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return fail(COLOSSAL_ERROR_OUT_OF_MEMORY,
                std::string(function) + ": out of host memory");
  } catch (const std::exception &e) {
    return fail(COLOSSAL_ERROR_INTERNAL,
                std::string(function) + ": internal error: " + e.what());
  } catch (...) {
    return fail(COLOSSAL_ERROR_INTERNAL,
                std::string(function) + ": internal error");
  }
}

void describe(const colossal::TensorInfo &info, colossal_tensor_t *out) {
  out->name = info.name.c_str();
  out->dtype = static_cast<colossal_dtype_t>(info.dtype);
  out->rank = static_cast<int32_t>(info.shape.size());
  out->shape = info.shape.data();
  out->data = nullptr;
  out->bytes = info.bytes();
}

bool validDType(colossal_dtype_t dtype) {
  return dtype >= COLOSSAL_DTYPE_F32 && dtype <= COLOSSAL_DTYPE_BOOL;
}

} // namespace

namespace {
/// Read or write: NOT_FOUND for an unknown name, else INVALID_ARGUMENT.
template <typename Call>
colossal_status_t parameterCall(const char *fn,
                                const colossal_session_t *session,
                                const char *name, Call call) {
  if (!session || !name)
    return nullArgument(fn, !session ? "session" : "name");
  return guarded(fn, [&] {
    colossal::Status s = call();
    if (s)
      return succeed();
    for (const colossal::ParameterInfo &p : session->session->parameters())
      if (p.name == name)
        return fromStatus(s, COLOSSAL_ERROR_INVALID_ARGUMENT);
    return fail(COLOSSAL_ERROR_NOT_FOUND, s.message());
  });
}

} // namespace

extern "C" {

const char *colossal_last_error(void) { return lastError.c_str(); }

const char *colossal_status_string(colossal_status_t status) {
  switch (status) {
  case COLOSSAL_OK:
    return "ok";
  case COLOSSAL_ERROR_INVALID_ARGUMENT:
    return "invalid argument";
  case COLOSSAL_ERROR_NOT_FOUND:
    return "not found";
  case COLOSSAL_ERROR_LOAD:
    return "load error";
  case COLOSSAL_ERROR_RUN:
    return "run error";
  case COLOSSAL_ERROR_OUT_OF_MEMORY:
    return "out of memory";
  case COLOSSAL_ERROR_INTERNAL:
    return "internal error";
  }
  return "unknown status";
}

size_t colossal_dtype_size(colossal_dtype_t dtype) {
  return validDType(dtype)
             ? colossal::rt::dtypeSize(static_cast<colossal::DType>(dtype))
             : 0;
}

const char *colossal_dtype_name(colossal_dtype_t dtype) {
  return validDType(dtype)
             ? colossal::rt::dtypeName(static_cast<colossal::DType>(dtype))
             : "unknown";
}

colossal_status_t colossal_plan_load(const char *path, colossal_plan_t **out) {
  if (!out)
    return nullArgument("colossal_plan_load", "out");
  *out = nullptr;
  if (!path)
    return nullArgument("colossal_plan_load", "path");
  return guarded("colossal_plan_load", [&] {
    std::shared_ptr<colossal::Plan> plan;
    colossal::Status s = colossal::Plan::load(path, plan);
    if (!s)
      return fromStatus(s, COLOSSAL_ERROR_LOAD);
    *out = new colossal_plan{std::move(plan)};
    return succeed();
  });
}

void colossal_plan_free(colossal_plan_t *plan) { delete plan; }

colossal_status_t colossal_plan_arena_bytes(const colossal_plan_t *plan,
                                            int64_t *out) {
  if (!plan || !out)
    return nullArgument("colossal_plan_arena_bytes", !plan ? "plan" : "out");
  *out = plan->plan->arenaBytes();
  return succeed();
}

colossal_status_t colossal_plan_num_inputs(const colossal_plan_t *plan,
                                           size_t *out) {
  if (!plan || !out)
    return nullArgument("colossal_plan_num_inputs", !plan ? "plan" : "out");
  *out = plan->plan->inputs().size();
  return succeed();
}

colossal_status_t colossal_plan_num_outputs(const colossal_plan_t *plan,
                                            size_t *out) {
  if (!plan || !out)
    return nullArgument("colossal_plan_num_outputs", !plan ? "plan" : "out");
  *out = plan->plan->outputs().size();
  return succeed();
}

colossal_status_t colossal_plan_input(const colossal_plan_t *plan, size_t index,
                                      colossal_tensor_t *out) {
  if (!plan || !out)
    return nullArgument("colossal_plan_input", !plan ? "plan" : "out");
  const auto &infos = plan->plan->inputs();
  if (index >= infos.size())
    return fail(COLOSSAL_ERROR_NOT_FOUND,
                "colossal_plan_input: index " + std::to_string(index) +
                    " is out of range; the plan has " +
                    std::to_string(infos.size()) + " inputs");
  describe(infos[index], out);
  return succeed();
}

colossal_status_t colossal_plan_output(const colossal_plan_t *plan,
                                       size_t index, colossal_tensor_t *out) {
  if (!plan || !out)
    return nullArgument("colossal_plan_output", !plan ? "plan" : "out");
  const auto &infos = plan->plan->outputs();
  if (index >= infos.size())
    return fail(COLOSSAL_ERROR_NOT_FOUND,
                "colossal_plan_output: index " + std::to_string(index) +
                    " is out of range; the plan has " +
                    std::to_string(infos.size()) + " outputs");
  describe(infos[index], out);
  return succeed();
}

/// The session of `plan` for `options`, as a handle that knows its world.
static colossal_status_t makeSession(const colossal_plan_t *plan,
                                     const colossal::SessionOptions &options,
                                     int32_t worldSize,
                                     colossal_session_t **out) {
  std::unique_ptr<colossal::Session> session;
  colossal::Status s = colossal::Session::create(plan->plan, options, session);
  if (!s)
    return fromStatus(s, COLOSSAL_ERROR_LOAD);
  *out = new colossal_session{std::move(session), options.rank, worldSize};
  return succeed();
}

colossal_status_t colossal_session_create(const colossal_plan_t *plan,
                                          int32_t threads,
                                          colossal_session_t **out) {
  if (!out)
    return nullArgument("colossal_session_create", "out");
  *out = nullptr;
  if (!plan)
    return nullArgument("colossal_session_create", "plan");
  return guarded("colossal_session_create", [&] {
    colossal::SessionOptions options;
    options.threads = threads;
    return makeSession(plan, options, 1, out);
  });
}

colossal_status_t colossal_session_create_on(const colossal_plan_t *plan,
                                             const char *backend,
                                             int32_t device, int32_t threads,
                                             colossal_session_t **out) {
  const char *fn = "colossal_session_create_on";
  if (!out)
    return nullArgument(fn, "out");
  *out = nullptr;
  if (!plan)
    return nullArgument(fn, "plan");
  return guarded(fn, [&] {
    colossal::SessionOptions options;
    options.threads = threads;
    options.backend = backend && *backend ? std::string(backend)
                                          : colossal::rt::defaultBackendName();
    options.device = device;
    return makeSession(plan, options, 1, out);
  });
}

colossal_status_t colossal_session_create_in_world(const colossal_plan_t *plan,
                                                   int32_t threads,
                                                   int32_t timeout_seconds,
                                                   colossal_session_t **out) {
  const char *fn = "colossal_session_create_in_world";
  if (!out)
    return nullArgument(fn, "out");
  *out = nullptr;
  if (!plan)
    return nullArgument(fn, "plan");
  return guarded(fn, [&] {
    colossal::rt::WorldInfo world;
    if (colossal::Status s = colossal::rt::detectWorld(world); !s)
      return fromStatus(s, COLOSSAL_ERROR_INVALID_ARGUMENT);
    colossal::SessionOptions options;
    options.threads = threads;
    options.rank = world.rank;
    if (world.size > 1) {
      std::unique_ptr<colossal::rt::Communicator> comm;
      if (colossal::Status s = colossal::rt::createWorldCommunicator(
              world,
              std::chrono::seconds(timeout_seconds > 0 ? timeout_seconds : 60),
              comm);
          !s)
        return fromStatus(s, COLOSSAL_ERROR_RUN);
      options.communicator = std::move(comm);
    }
    return makeSession(plan, options, world.size, out);
  });
}

colossal_status_t colossal_session_world(const colossal_session_t *session,
                                         int32_t *rank, int32_t *size) {
  if (!session)
    return nullArgument("colossal_session_world", "session");
  if (rank)
    *rank = session->rank;
  if (size)
    *size = session->size;
  return succeed();
}

void colossal_session_free(colossal_session_t *session) { delete session; }

colossal_status_t colossal_session_set_input(colossal_session_t *session,
                                             const char *name,
                                             colossal_dtype_t dtype,
                                             const int64_t *shape, int32_t rank,
                                             const void *data) {
  const char *fn = "colossal_session_set_input";
  if (!session)
    return nullArgument(fn, "session");
  if (!name)
    return nullArgument(fn, "name");
  if (rank < 0 || (rank > 0 && !shape))
    return fail(COLOSSAL_ERROR_INVALID_ARGUMENT,
                std::string(fn) + ": input '" + name +
                    "': a negative rank or a null shape");
  if (!validDType(dtype))
    return fail(COLOSSAL_ERROR_INVALID_ARGUMENT,
                std::string(fn) + ": input '" + name + "': unknown dtype " +
                    std::to_string(static_cast<int>(dtype)));
  return guarded(fn, [&] {
    if (session->session->plan().findInput(name) < 0)
      return fail(COLOSSAL_ERROR_NOT_FOUND,
                  session->session->setInput(name, {}).message());
    colossal::TensorRef ref;
    ref.data = const_cast<void *>(data);
    ref.dtype = static_cast<colossal::DType>(dtype);
    ref.shape.assign(shape, shape + rank);
    return fromStatus(session->session->setInput(name, ref),
                      COLOSSAL_ERROR_INVALID_ARGUMENT);
  });
}

colossal_status_t colossal_session_run(colossal_session_t *session) {
  if (!session)
    return nullArgument("colossal_session_run", "session");
  return guarded("colossal_session_run", [&] {
    return fromStatus(session->session->run(), COLOSSAL_ERROR_RUN);
  });
}

colossal_status_t colossal_session_output(const colossal_session_t *session,
                                          const char *name,
                                          colossal_tensor_t *out) {
  const char *fn = "colossal_session_output";
  if (!session || !name || !out)
    return nullArgument(fn, !session ? "session" : !name ? "name" : "out");
  return guarded(fn, [&] {
    const colossal::Plan &plan = session->session->plan();
    colossal::TensorRef ref;
    colossal::Status s = session->session->output(name, ref);
    int index = plan.findOutput(name);
    if (!s)
      return fail(index < 0 ? COLOSSAL_ERROR_NOT_FOUND : COLOSSAL_ERROR_RUN,
                  s.message());
    describe(plan.outputs()[index], out);
    out->data = ref.data;
    return succeed();
  });
}

colossal_status_t
colossal_session_copy_output(const colossal_session_t *session,
                             const char *name, void *dst, size_t bytes) {
  const char *fn = "colossal_session_copy_output";
  if (!session || !name)
    return nullArgument(fn, !session ? "session" : "name");
  return guarded(fn, [&] {
    colossal::Status s = session->session->copyOutput(name, dst, bytes);
    if (s)
      return succeed();
    if (session->session->plan().findOutput(name) < 0)
      return fail(COLOSSAL_ERROR_NOT_FOUND, s.message());
    return fromStatus(s, COLOSSAL_ERROR_INVALID_ARGUMENT);
  });
}

colossal_status_t
colossal_session_num_parameters(const colossal_session_t *session,
                                size_t *out) {
  if (!session || !out)
    return nullArgument("colossal_session_num_parameters",
                        !session ? "session" : "out");
  *out = session->session->parameters().size();
  return succeed();
}

colossal_status_t colossal_session_parameter(const colossal_session_t *session,
                                             size_t index,
                                             colossal_tensor_t *out,
                                             int32_t *is_optimizer_state) {
  const char *fn = "colossal_session_parameter";
  if (!session || !out)
    return nullArgument(fn, !session ? "session" : "out");
  const auto &params = session->session->parameters();
  if (index >= params.size())
    return fail(COLOSSAL_ERROR_NOT_FOUND,
                std::string(fn) + ": index " + std::to_string(index) +
                    " is out of range; the plan has " +
                    std::to_string(params.size()) + " parameters");
  const colossal::ParameterInfo &p = params[index];
  out->name = p.name.c_str();
  out->dtype = static_cast<colossal_dtype_t>(p.dtype);
  out->rank = static_cast<int32_t>(p.shape.size());
  out->shape = p.shape.data();
  out->data = nullptr;
  out->bytes = p.bytes();
  if (is_optimizer_state)
    *is_optimizer_state = p.optimizerState ? 1 : 0;
  return succeed();
}

colossal_status_t
colossal_session_read_parameter(const colossal_session_t *session,
                                const char *name, void *dst, size_t bytes) {
  return parameterCall("colossal_session_read_parameter", session, name, [&] {
    return session->session->readParameter(name, dst, bytes);
  });
}

colossal_status_t colossal_session_write_parameter(colossal_session_t *session,
                                                   const char *name,
                                                   const void *src,
                                                   size_t bytes) {
  return parameterCall("colossal_session_write_parameter", session, name, [&] {
    return session->session->writeParameter(name, src, bytes);
  });
}

colossal_status_t
colossal_session_save_parameters(const colossal_session_t *session,
                                 const char *path) {
  const char *fn = "colossal_session_save_parameters";
  if (!session || !path)
    return nullArgument(fn, !session ? "session" : "path");
  return guarded(fn, [&] {
    colossal::Status s = session->session->saveParameters(path);
    return s ? succeed() : fromStatus(s, COLOSSAL_ERROR_INVALID_ARGUMENT);
  });
}

colossal_status_t colossal_session_load_parameters(colossal_session_t *session,
                                                   const char *path) {
  const char *fn = "colossal_session_load_parameters";
  if (!session || !path)
    return nullArgument(fn, !session ? "session" : "path");
  return guarded(fn, [&] {
    colossal::Status s = session->session->loadParameters(path);
    return s ? succeed() : fromStatus(s, COLOSSAL_ERROR_LOAD);
  });
}

colossal_status_t
colossal_session_peak_device_bytes(const colossal_session_t *session,
                                   int64_t *out) {
  if (!session || !out)
    return nullArgument("colossal_session_peak_device_bytes",
                        !session ? "session" : "out");
  *out = static_cast<int64_t>(session->session->peakDeviceBytes());
  return succeed();
}

} // extern "C"
