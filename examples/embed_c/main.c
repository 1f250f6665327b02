/*===- main.c - Embedding the Colossal runtime from C ----------------------===*
 *
 * Loads the plan named on the command line, fills each input with a
 * deterministic pattern, runs it, and prints every output's shape and first
 * values and the device memory used. Given expected values after the plan,
 * it compares the first output's leading values with them (as floats) and
 * exits 1 on a mismatch, which is how the example is tested.
 *
 *   colossal-embed-c model.cplan [EXPECTED...]
 *
 *===----------------------------------------------------------------------===*/

#include "colossal/colossal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The pattern: small multiples of 0.25 (exact in every float type). */
static float pattern(size_t i, size_t input) {
  return (float)((long)((i * 7 + input * 3) % 11) - 5) * 0.25f;
}

static uint16_t toHalf(float f) {
  /* Exact for the pattern's values (normal numbers, few mantissa bits). */
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) == 0)
    return (uint16_t)(u >> 16);
  return (uint16_t)(((u >> 16) & 0x8000u) |
                    ((((u >> 23) & 0xffu) - 112u) << 10) |
                    ((u >> 13) & 0x3ffu));
}

static float fromHalf(uint16_t h) {
  uint32_t exp = (h >> 10) & 0x1fu, u;
  float f;
  if (exp == 0) /* zero or subnormal */
    return ((h & 0x8000u) ? -1.0f : 1.0f) * (float)(h & 0x3ffu) / 16777216.0f;
  u = ((uint32_t)(h & 0x8000u) << 16) |
      (exp == 31 ? 0x7f800000u : (exp + 112u) << 23) |
      ((uint32_t)(h & 0x3ffu) << 13);
  memcpy(&f, &u, 4);
  return f;
}

static void fill(void *data, colossal_dtype_t dtype, size_t n, size_t input) {
  size_t i;
  for (i = 0; i < n; ++i) {
    float v = pattern(i, input);
    switch (dtype) {
    case COLOSSAL_DTYPE_F32:
      ((float *)data)[i] = v;
      break;
    case COLOSSAL_DTYPE_F16:
      ((uint16_t *)data)[i] = toHalf(v);
      break;
    case COLOSSAL_DTYPE_BF16: {
      uint32_t u;
      memcpy(&u, &v, 4);
      ((uint16_t *)data)[i] = (uint16_t)(u >> 16);
      break;
    }
    case COLOSSAL_DTYPE_I64:
      ((int64_t *)data)[i] = (int64_t)(i % 7) - 3;
      break;
    case COLOSSAL_DTYPE_I32:
      ((int32_t *)data)[i] = (int32_t)(i % 7) - 3;
      break;
    case COLOSSAL_DTYPE_BOOL:
      ((uint8_t *)data)[i] = (uint8_t)(i % 2);
      break;
    }
  }
}

static double valueAt(const colossal_tensor_t *t, size_t i) {
  const char *p = (const char *)t->data;
  switch (t->dtype) {
  case COLOSSAL_DTYPE_F32:
    return ((const float *)p)[i];
  case COLOSSAL_DTYPE_F16:
    return fromHalf(((const uint16_t *)p)[i]);
  case COLOSSAL_DTYPE_BF16: {
    uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
  case COLOSSAL_DTYPE_I64:
    return (double)((const int64_t *)p)[i];
  case COLOSSAL_DTYPE_I32:
    return ((const int32_t *)p)[i];
  case COLOSSAL_DTYPE_BOOL:
    return ((const uint8_t *)p)[i];
  }
  return 0;
}

static size_t elements(const colossal_tensor_t *t) {
  size_t n = 1;
  int32_t d;
  for (d = 0; d < t->rank; ++d)
    n *= (size_t)t->shape[d];
  return n;
}

static void printShape(const colossal_tensor_t *t) {
  int32_t d;
  printf("%s[", colossal_dtype_name(t->dtype));
  for (d = 0; d < t->rank; ++d)
    printf("%s%lld", d ? "," : "", (long long)t->shape[d]);
  printf("]");
}

/* Prints the failed call's message and returns 1. */
static int failed(const char *what, colossal_status_t status) {
  fprintf(stderr, "embed_c: %s failed (%s): %s\n", what,
          colossal_status_string(status), colossal_last_error());
  return 1;
}

int main(int argc, char **argv) {
  colossal_plan_t *plan = NULL;
  colossal_session_t *session = NULL;
  colossal_status_t st;
  size_t numInputs = 0, numOutputs = 0, i;
  int64_t arena = 0, peak = 0;
  int rc = 0;

  if (argc < 2) {
    fprintf(stderr, "usage: %s PLAN.cplan [EXPECTED...]\n", argv[0]);
    return 2;
  }
  if ((st = colossal_plan_load(argv[1], &plan)) != COLOSSAL_OK)
    return failed("loading the plan", st);
  colossal_plan_arena_bytes(plan, &arena);
  printf("plan %s: arena %lld bytes\n", argv[1], (long long)arena);

  if ((st = colossal_session_create(plan, 1, &session)) != COLOSSAL_OK) {
    rc = failed("creating a session", st);
    goto done;
  }

  colossal_plan_num_inputs(plan, &numInputs);
  for (i = 0; i < numInputs; ++i) {
    colossal_tensor_t info;
    void *data;
    colossal_plan_input(plan, i, &info);
    data = malloc(info.bytes ? info.bytes : 1);
    if (!data) {
      fprintf(stderr, "embed_c: out of memory\n");
      rc = 1;
      goto done;
    }
    fill(data, info.dtype, elements(&info), i);
    st = colossal_session_set_input(session, info.name, info.dtype, info.shape,
                                    info.rank, data);
    free(data); /* the session copied it */
    printf("input %s: ", info.name);
    printShape(&info);
    printf("\n");
    if (st != COLOSSAL_OK) {
      rc = failed("setting an input", st);
      goto done;
    }
  }

  if ((st = colossal_session_run(session)) != COLOSSAL_OK) {
    rc = failed("running", st);
    goto done;
  }

  colossal_plan_num_outputs(plan, &numOutputs);
  for (i = 0; i < numOutputs; ++i) {
    colossal_tensor_t info, out;
    size_t n, j;
    colossal_plan_output(plan, i, &info);
    if ((st = colossal_session_output(session, info.name, &out)) !=
        COLOSSAL_OK) {
      rc = failed("reading an output", st);
      goto done;
    }
    n = elements(&out);
    printf("output %s: ", out.name);
    printShape(&out);
    printf(" =");
    for (j = 0; j < n && j < 8; ++j)
      printf(" %g", valueAt(&out, j));
    printf("%s\n", n > 8 ? " ..." : "");

    /* The first output against the expected values, if any. */
    if (i == 0 && argc > 2) {
      size_t want = (size_t)(argc - 2);
      if (want > n) {
        fprintf(stderr, "embed_c: %zu values expected, output has %zu\n", want,
                n);
        rc = 1;
      }
      for (j = 0; j < want && j < n; ++j) {
        double expected = atof(argv[2 + j]), got = valueAt(&out, j);
        if (fabs(got - expected) > 1e-4 * (1 + fabs(expected))) {
          fprintf(stderr, "embed_c: %s[%zu] is %g, expected %g\n", out.name, j,
                  got, expected);
          rc = 1;
        }
      }
    }
  }

  colossal_session_peak_device_bytes(session, &peak);
  printf("peak device memory: %lld bytes\n", (long long)peak);
  if (peak != arena) {
    fprintf(stderr,
            "embed_c: the runtime allocated %lld bytes, the plan "
            "predicted %lld\n",
            (long long)peak, (long long)arena);
    rc = 1;
  }
  if (rc == 0 && argc > 2)
    printf("outputs match\n");

done:
  colossal_session_free(session);
  colossal_plan_free(plan);
  return rc;
}
