/*===- colossal.h - The C API of the Colossal runtime ----------------------===*
 *
 * For embedding the runtime in C (or any language with a C FFI): load a plan,
 * create a session, set inputs, run, read outputs. Every call returns a
 * colossal_status_t (0 is success); on failure colossal_last_error() gives
 * this thread's message, which says what went wrong and what to do. Handles
 * are opaque; no C++ exception crosses this interface.
 *
 * Lifetimes: strings and shape arrays a plan returns live as long as the
 * plan; output data and shapes live as long as the session and stay valid
 * until the next set_input or run on it. A session keeps its plan alive, so
 * a plan may be freed before its sessions.
 *
 *===----------------------------------------------------------------------===*/

#ifndef COLOSSAL_RUNTIME_INCLUDE_COLOSSAL_COLOSSAL_H
#define COLOSSAL_RUNTIME_INCLUDE_COLOSSAL_COLOSSAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum colossal_status_t {
  COLOSSAL_OK = 0,
  COLOSSAL_ERROR_INVALID_ARGUMENT = 1, /* null pointer, bad dtype/shape/size */
  COLOSSAL_ERROR_NOT_FOUND = 2,        /* no input/output of that name/index */
  COLOSSAL_ERROR_LOAD = 3, /* plan or weights unreadable or invalid */
  COLOSSAL_ERROR_RUN = 4,  /* a run failed (input missing, kernel error) */
  COLOSSAL_ERROR_OUT_OF_MEMORY = 5,
  COLOSSAL_ERROR_INTERNAL = 6
} colossal_status_t;

/* Element types; the values are those of the plan format. */
typedef enum colossal_dtype_t {
  COLOSSAL_DTYPE_F32 = 1,
  COLOSSAL_DTYPE_F16 = 2,
  COLOSSAL_DTYPE_BF16 = 3,
  COLOSSAL_DTYPE_I64 = 4,
  COLOSSAL_DTYPE_I32 = 5,
  COLOSSAL_DTYPE_BOOL = 6 /* one byte per element */
} colossal_dtype_t;

typedef struct colossal_plan colossal_plan_t;
typedef struct colossal_session colossal_session_t;

/* A plan input/output, or a session output (then `data` is set). */
typedef struct colossal_tensor_t {
  const char *name;
  colossal_dtype_t dtype;
  int32_t rank;
  const int64_t *shape; /* `rank` dimensions */
  const void *data;     /* outputs only: row-major, in the session's arena */
  size_t bytes;
} colossal_tensor_t;

/* The message of this thread's last failed call ("" if the last call
 * succeeded). Valid until the next call on this thread. */
const char *colossal_last_error(void);
/* "ok", "invalid argument", ... */
const char *colossal_status_string(colossal_status_t status);
/* Bytes per element of `dtype` (0 if unknown) and its name ("float32"). */
size_t colossal_dtype_size(colossal_dtype_t dtype);
const char *colossal_dtype_name(colossal_dtype_t dtype);

/* Plans. */
colossal_status_t colossal_plan_load(const char *path, colossal_plan_t **out);
void colossal_plan_free(colossal_plan_t *plan);
colossal_status_t colossal_plan_arena_bytes(const colossal_plan_t *plan,
                                            int64_t *out);
colossal_status_t colossal_plan_num_inputs(const colossal_plan_t *plan,
                                           size_t *out);
colossal_status_t colossal_plan_num_outputs(const colossal_plan_t *plan,
                                            size_t *out);
colossal_status_t colossal_plan_input(const colossal_plan_t *plan, size_t index,
                                      colossal_tensor_t *out);
colossal_status_t colossal_plan_output(const colossal_plan_t *plan,
                                       size_t index, colossal_tensor_t *out);

/* Sessions. `threads` <= 0 keeps the default; the backend is the CPU. */
colossal_status_t colossal_session_create(const colossal_plan_t *plan,
                                          int32_t threads,
                                          colossal_session_t **out);
/* The same on a named backend: "cpu", "cuda" (builds with the CUDA
 * backend), or NULL / "" for the default (cuda when a GPU is present, else
 * cpu); `device` is the CUDA ordinal (0 on the CPU). Without a GPU, "cuda"
 * fails with a message saying no CUDA device was found. */
colossal_status_t colossal_session_create_on(const colossal_plan_t *plan,
                                             const char *backend,
                                             int32_t device, int32_t threads,
                                             colossal_session_t **out);
/* A session for this process's rank of a run of several processes: the rank
 * and world come from the environment the launcher set (torchrun's RANK,
 * WORLD_SIZE, MASTER_ADDR, MASTER_PORT; Slurm's; OpenMPI's), the ranks
 * meet (rank 0 serves the rendezvous) and every collective waits at most
 * `timeout_seconds` (<= 0: 60). Every rank calls it with the same plan. In
 * a process that no launcher started, the same as colossal_session_create.
 * A plan compiled for another number of ranks is refused. */
colossal_status_t colossal_session_create_in_world(const colossal_plan_t *plan,
                                                   int32_t threads,
                                                   int32_t timeout_seconds,
                                                   colossal_session_t **out);
/* This session's rank and the number of ranks of its run. */
colossal_status_t colossal_session_world(const colossal_session_t *session,
                                         int32_t *rank, int32_t *size);
void colossal_session_free(colossal_session_t *session);
/* Copies `data` (host memory, row-major) into input `name`, which must have
 * exactly this dtype and shape. Set every input before each run. */
colossal_status_t colossal_session_set_input(colossal_session_t *session,
                                             const char *name,
                                             colossal_dtype_t dtype,
                                             const int64_t *shape, int32_t rank,
                                             const void *data);
colossal_status_t colossal_session_run(colossal_session_t *session);
/* Output `name`: a view into the arena (no copy). */
colossal_status_t colossal_session_output(const colossal_session_t *session,
                                          const char *name,
                                          colossal_tensor_t *out);
/* Copies output `name` to `dst`; `bytes` must be its exact size. */
colossal_status_t
colossal_session_copy_output(const colossal_session_t *session,
                             const char *name, void *dst, size_t bytes);
/* Parameters: model weights and, in a train plan (which updates them on
 * every optimizer step), optimizer state. `out->data` is null; `name`,
 * `shape` live as long as the session. `*is_optimizer_state` (may be null)
 * tells the two apart. Reading and writing them is how an embedder
 * checkpoints and resumes training. */
colossal_status_t
colossal_session_num_parameters(const colossal_session_t *session, size_t *out);
colossal_status_t colossal_session_parameter(const colossal_session_t *session,
                                             size_t index,
                                             colossal_tensor_t *out,
                                             int32_t *is_optimizer_state);
/* Copies parameter `name` to/from host memory; `bytes` must be its size. */
colossal_status_t
colossal_session_read_parameter(const colossal_session_t *session,
                                const char *name, void *dst, size_t bytes);
colossal_status_t colossal_session_write_parameter(colossal_session_t *session,
                                                   const char *name,
                                                   const void *src,
                                                   size_t bytes);
/* Saves every parameter to a safetensors file at `path`, atomically (a
 * checkpoint of a train plan); loads one back (it must hold exactly the
 * plan's parameters). */
colossal_status_t
colossal_session_save_parameters(const colossal_session_t *session,
                                 const char *path);
colossal_status_t colossal_session_load_parameters(colossal_session_t *session,
                                                   const char *path);
/* The most device memory the session held at once (its arena). */
colossal_status_t
colossal_session_peak_device_bytes(const colossal_session_t *session,
                                   int64_t *out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* COLOSSAL_RUNTIME_INCLUDE_COLOSSAL_COLOSSAL_H */
