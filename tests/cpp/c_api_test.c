/* The C API from C: c_api_test DIR, where DIR holds small.cnnx (written by write_test_models).
 * - queries: shapes, sizes, class names;
 * - bad files (missing, empty, text, PNG, zip, truncated, corrupted) and bad arguments give an
 *   error status and a message naming the file or the problem, and no model;
 * - a wrong input shape or a short output buffer gives CNNX_ERROR_SHAPE before anything is read
 *   or written: the buffers here are allocated at the wrong size exactly, so AddressSanitizer
 *   (see .ci/native) reports any read past them;
 * - uint8 input gives the same bits as the same values as floats (the model starts with
 *   Rescaling(1/255));
 * - 4 threads predicting with one model get the same bits as serial calls (also run under TSan),
 *   and each thread sees its own error message.
 * Exits 1 on any failure. */
#include <cnnx/cnnx.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                        \
    }                                                                    \
  } while (0)

static const char* error_message(void) {
  const char* message = NULL;
  if (cnnx_last_error(&message) != CNNX_OK || message == NULL) return "(cnnx_last_error failed)";
  return message;
}

/* The status is `want` and the message contains `part` (when not NULL). */
static void expect_error(cnnx_status got, cnnx_status want, const char* part, int line) {
  const char* message = error_message();
  if (got != want) {
    fprintf(stderr, "line %d: expected status %d, received %d (%s)\n", line, (int)want, (int)got, message);
    ++failures;
  } else if (part && !strstr(message, part)) {
    fprintf(stderr, "line %d: expected a message containing '%s', received '%s'\n", line, part, message);
    ++failures;
  }
}
#define EXPECT_ERROR(call, want, part) expect_error((call), (want), (part), __LINE__)

static unsigned char* read_all(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  unsigned char* data;
  long n;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  data = (unsigned char*)malloc(n > 0 ? (size_t)n : 1);
  *size = fread(data, 1, (size_t)n, f);
  fclose(f);
  return data;
}

static void write_all(const char* path, const void* data, size_t size) {
  FILE* f = fopen(path, "wb");
  if (!f || fwrite(data, 1, size, f) != size) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
  fclose(f);
}

/* A file that is not a model: the file API and the memory API refuse it, naming it. */
static void expect_bad_file(const char* dir, const char* name, const void* data, size_t size) {
  char path[4096];
  cnnx_model* model = (cnnx_model*)&failures; /* not NULL: the call must reset it */
  snprintf(path, sizeof path, "%s/%s", dir, name);
  write_all(path, data, size);
  EXPECT_ERROR(cnnx_model_open(path, &model), CNNX_ERROR_FILE, path);
  CHECK(model == NULL);
  CHECK(strlen(error_message()) > strlen(path) + 10); /* says more than the name */
  model = (cnnx_model*)&failures;
  EXPECT_ERROR(cnnx_model_open_memory(data, size, name, &model), CNNX_ERROR_FILE, name);
  CHECK(model == NULL);
}

static void test_bad_files(const char* dir, const unsigned char* good, size_t size) {
  static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D',
                                      'R',  0,   0,   0,   1,    0,    0,    0,    1, 8, 0, 0,  0,   0};
  static const unsigned char zip[] = {'P', 'K', 3,  4,  20, 0,  0,  0,  8,  0, 1, 2, 3, 4,   5,   6,  7,
                                      8,   9,   10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 0, 'a', 'b', 'c'};
  static const char text[] = "This is not a model.\nJust some text, long enough to look like a header length.\n";
  const size_t cuts[] = {1, 7, 8, 9, 64, 200, 0, 0, 0};
  unsigned char* copy = (unsigned char*)malloc(size);
  char name[64];
  cnnx_model* model = (cnnx_model*)&failures;
  size_t i;

  EXPECT_ERROR(cnnx_model_open("/nonexistent/dir/model.cnnx", &model), CNNX_ERROR_FILE, "/nonexistent/dir/model.cnnx");
  CHECK(model == NULL);
  EXPECT_ERROR(cnnx_model_open(dir, &model), CNNX_ERROR_FILE, dir); /* a directory */
  CHECK(model == NULL);
  expect_bad_file(dir, "empty.cnnx", "", 0);
  expect_bad_file(dir, "text.cnnx", text, sizeof text - 1);
  expect_bad_file(dir, "image.png", png, sizeof png);
  expect_bad_file(dir, "archive.zip", zip, sizeof zip);

  /* Truncated: at small fixed lengths and at the half and the last byte. */
  {
    size_t lengths[9];
    memcpy(lengths, cuts, sizeof cuts);
    lengths[6] = size / 2;
    lengths[7] = size - 4;
    lengths[8] = size - 1;
    for (i = 0; i < 9; ++i) {
      if (lengths[i] >= size) continue;
      snprintf(name, sizeof name, "truncated_%lu.cnnx", (unsigned long)lengths[i]);
      expect_bad_file(dir, name, good, lengths[i]);
    }
  }
  /* Corrupted: one byte changed in the header length, the JSON header and the tensor data (the
   * checksum or the structure check catches each). */
  {
    size_t positions[5];
    positions[0] = 0;
    positions[1] = 5;
    positions[2] = 40;
    positions[3] = size / 2;
    positions[4] = size - 1;
    for (i = 0; i < 5; ++i) {
      if (positions[i] >= size) continue;
      memcpy(copy, good, size);
      copy[positions[i]] ^= 0x5a;
      snprintf(name, sizeof name, "corrupt_at_%lu.cnnx", (unsigned long)positions[i]);
      expect_bad_file(dir, name, copy, size);
    }
  }
  /* Trailing junk after a valid file. */
  {
    unsigned char* longer = (unsigned char*)malloc(size + 3);
    memcpy(longer, good, size);
    memcpy(longer + size, "xyz", 3);
    expect_bad_file(dir, "trailing.cnnx", longer, size + 3);
    free(longer);
  }
  free(copy);
}

static void test_arguments(cnnx_model* model) {
  size_t n;
  int64_t dims[1];
  const char* s;
  cnnx_model* out = NULL;
  EXPECT_ERROR(cnnx_model_open(NULL, &out), CNNX_ERROR_INVALID_ARGUMENT, "path");
  EXPECT_ERROR(cnnx_model_open("x.cnnx", NULL), CNNX_ERROR_INVALID_ARGUMENT, "cnnx_model_open");
  EXPECT_ERROR(cnnx_model_open_memory(NULL, 10, NULL, &out), CNNX_ERROR_INVALID_ARGUMENT, "data");
  EXPECT_ERROR(cnnx_model_input_rank(NULL, &n), CNNX_ERROR_INVALID_ARGUMENT, "cnnx_model_input_rank");
  EXPECT_ERROR(cnnx_model_input_rank(model, NULL), CNNX_ERROR_INVALID_ARGUMENT, "rank");
  EXPECT_ERROR(cnnx_model_input_dims(model, dims, 1), CNNX_ERROR_INVALID_ARGUMENT, "expected room for 3 dims");
  EXPECT_ERROR(cnnx_model_output_size(NULL, &n), CNNX_ERROR_INVALID_ARGUMENT, "model");
  EXPECT_ERROR(cnnx_model_class_name(model, 3, &s), CNNX_ERROR_INVALID_ARGUMENT,
               "expected an index in [0, 3), received 3");
  CHECK(cnnx_last_error(NULL) == CNNX_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(error_message(), "received 3") != NULL); /* untouched by the failed cnnx_last_error */
  CHECK(cnnx_model_free(NULL) == CNNX_OK);
  CHECK(strcmp(error_message(), "") == 0); /* a successful call clears it */
}

static void test_queries(cnnx_model* model) {
  size_t rank = 0, size = 0, count = 0;
  int64_t dims[4] = {0, 0, 0, 0};
  const char* name = NULL;
  CHECK(cnnx_model_input_rank(model, &rank) == CNNX_OK && rank == 3);
  CHECK(cnnx_model_input_dims(model, dims, 4) == CNNX_OK && dims[0] == 9 && dims[1] == 7 && dims[2] == 3);
  CHECK(cnnx_model_input_size(model, &size) == CNNX_OK && size == 9 * 7 * 3);
  CHECK(cnnx_model_output_rank(model, &rank) == CNNX_OK && rank == 1);
  CHECK(cnnx_model_output_dims(model, dims, 1) == CNNX_OK && dims[0] == 3);
  CHECK(cnnx_model_output_size(model, &size) == CNNX_OK && size == 3);
  CHECK(cnnx_model_class_count(model, &count) == CNNX_OK && count == 3);
  CHECK(cnnx_model_class_name(model, 0, &name) == CNNX_OK && strcmp(name, "circle") == 0);
  CHECK(cnnx_model_class_name(model, 2, &name) == CNNX_OK && strcmp(name, "triangle") == 0);
}

enum { SAMPLE = 9 * 7 * 3, CLASSES = 3, N = 37 };

/* Buffers of exactly the received shape: any read or write past them is an ASan report. */
static void test_shapes(cnnx_model* model) {
  const int64_t wrong_channels[4] = {2, 9, 7, 1}, swapped[4] = {2, 7, 9, 3}, one_sample[3] = {9, 7, 3},
                too_many[5] = {2, 9, 7, 3, 1}, negative[4] = {-1, 9, 7, 3}, good[4] = {2, 9, 7, 3},
                huge[4] = {INT64_MAX / 4, 9, 7, 3}, empty[4] = {0, 9, 7, 3};
  float* small_in = (float*)malloc(sizeof(float) * 2 * 9 * 7 * 1);
  uint8_t* small_u8 = (uint8_t*)malloc(2 * 9 * 7 * 1);
  float* in = (float*)calloc(2 * SAMPLE, sizeof(float));
  float* short_out = (float*)malloc(sizeof(float) * 5);
  float out[6];
  int i;
  for (i = 0; i < 5; ++i) short_out[i] = -7.0f;

  EXPECT_ERROR(cnnx_model_predict_f32(model, small_in, wrong_channels, 4, out, 6), CNNX_ERROR_SHAPE,
               "cnnx_model_predict_f32: expected input of shape (2, 9, 7, 3), received (2, 9, 7, 1)");
  EXPECT_ERROR(cnnx_model_predict_u8(model, small_u8, wrong_channels, 4, out, 6), CNNX_ERROR_SHAPE,
               "cnnx_model_predict_u8: expected input of shape (2, 9, 7, 3), received (2, 9, 7, 1)");
  EXPECT_ERROR(cnnx_model_predict_f32(model, in, swapped, 4, out, 6), CNNX_ERROR_SHAPE, "received (2, 7, 9, 3)");
  EXPECT_ERROR(cnnx_model_predict_f32(model, in, one_sample, 3, out, 6), CNNX_ERROR_SHAPE,
               "expected input of shape (n, 9, 7, 3), received (9, 7, 3)");
  EXPECT_ERROR(cnnx_model_predict_f32(model, in, too_many, 5, out, 6), CNNX_ERROR_SHAPE, "received (2, 9, 7, 3, 1)");
  EXPECT_ERROR(cnnx_model_predict_f32(model, in, negative, 4, out, 6), CNNX_ERROR_SHAPE,
               "expected input of shape (n, 9, 7, 3), received (-1, 9, 7, 3)");
  EXPECT_ERROR(cnnx_model_predict_f32(model, in, huge, 4, out, 6), CNNX_ERROR_SHAPE, "fits int64");
  EXPECT_ERROR(cnnx_model_predict_f32(model, in, good, 4, short_out, 5), CNNX_ERROR_SHAPE,
               "expected an output buffer of at least 6 floats (shape (2, 3)), received 5");
  EXPECT_ERROR(cnnx_model_predict_u8(model, small_u8, good, 4, short_out, 5), CNNX_ERROR_SHAPE, "received 5");
  for (i = 0; i < 5; ++i) CHECK(short_out[i] == -7.0f); /* nothing written */
  EXPECT_ERROR(cnnx_model_predict_f32(model, in, NULL, 4, out, 6), CNNX_ERROR_INVALID_ARGUMENT, "shape");
  EXPECT_ERROR(cnnx_model_predict_f32(model, NULL, good, 4, out, 6), CNNX_ERROR_INVALID_ARGUMENT, "input");
  EXPECT_ERROR(cnnx_model_predict_f32(model, in, good, 4, NULL, 6), CNNX_ERROR_INVALID_ARGUMENT, "output");
  EXPECT_ERROR(cnnx_model_predict_f32(NULL, in, good, 4, out, 6), CNNX_ERROR_INVALID_ARGUMENT, "model");
  /* An empty batch reads and writes nothing. */
  CHECK(cnnx_model_predict_f32(model, NULL, empty, 4, NULL, 0) == CNNX_OK);
  CHECK(cnnx_model_predict_f32(model, in, good, 4, out, 6) == CNNX_OK);
  free(small_in);
  free(small_u8);
  free(in);
  free(short_out);
}

/* Inputs and the serial results the threads compare against. */
static uint8_t pixels[N * SAMPLE];
static float values[N * SAMPLE];
static float serial[N * CLASSES];

struct worker {
  cnnx_model* model;
  int index;
  int mismatches;
  int wrong_errors;
};

static void* work(void* arg) {
  struct worker* w = (struct worker*)arg;
  const int64_t shape[4] = {N, 9, 7, 3};
  float out[N * CLASSES];
  const char* name;
  char want[64];
  int round;
  for (round = 0; round < 10; ++round) {
    if (round % 2 == 0) {
      if (cnnx_model_predict_f32(w->model, values, shape, 4, out, N * CLASSES) != CNNX_OK) ++w->mismatches;
    } else if (cnnx_model_predict_u8(w->model, pixels, shape, 4, out, N * CLASSES) != CNNX_OK) {
      ++w->mismatches;
    }
    if (memcmp(out, serial, sizeof out) != 0) ++w->mismatches;
    /* Each thread's error message is its own. */
    cnnx_model_class_name(w->model, (size_t)(100 + w->index), &name);
    snprintf(want, sizeof want, "received %d", 100 + w->index);
    if (!strstr(error_message(), want)) ++w->wrong_errors;
  }
  return NULL;
}

static void test_predict_and_threads(cnnx_model* model, cnnx_model* from_memory) {
  const int64_t shape[4] = {N, 9, 7, 3};
  float out[N * CLASSES];
  struct worker workers[4];
  pthread_t threads[4];
  unsigned state = 12345;
  int i, t;
  for (i = 0; i < N * SAMPLE; ++i) {
    state = state * 1103515245u + 12345u;
    pixels[i] = (uint8_t)(state >> 24);
    values[i] = (float)pixels[i];
  }
  CHECK(cnnx_model_predict_f32(model, values, shape, 4, serial, N * CLASSES) == CNNX_OK);
  for (i = 0; i < N; ++i) {
    float sum = serial[i * 3] + serial[i * 3 + 1] + serial[i * 3 + 2];
    CHECK(sum > 0.999f && sum < 1.001f);
  }
  CHECK(cnnx_model_predict_u8(model, pixels, shape, 4, out, N * CLASSES) == CNNX_OK);
  CHECK(memcmp(out, serial, sizeof out) == 0);
  CHECK(cnnx_model_predict_f32(from_memory, values, shape, 4, out, N * CLASSES) == CNNX_OK);
  CHECK(memcmp(out, serial, sizeof out) == 0);

  for (t = 0; t < 4; ++t) {
    workers[t].model = model;
    workers[t].index = t;
    workers[t].mismatches = workers[t].wrong_errors = 0;
    CHECK(pthread_create(&threads[t], NULL, work, &workers[t]) == 0);
  }
  for (t = 0; t < 4; ++t) {
    pthread_join(threads[t], NULL);
    CHECK(workers[t].mismatches == 0);
    CHECK(workers[t].wrong_errors == 0);
  }
}

int main(int argc, char** argv) {
  char path[4096];
  unsigned char* bytes;
  size_t size = 0;
  cnnx_model *model = NULL, *from_memory = NULL;
  const char* version = cnnx_version();
  if (argc != 2) {
    fprintf(stderr, "usage: c_api_test DIR (holding small.cnnx)\n");
    return 2;
  }
  CHECK(version != NULL && strchr(version, '.') != NULL);
  snprintf(path, sizeof path, "%s/small.cnnx", argv[1]);
  bytes = read_all(path, &size);
  if (!bytes || cnnx_model_open(path, &model) != CNNX_OK ||
      cnnx_model_open_memory(bytes, size, "small", &from_memory) != CNNX_OK) {
    fprintf(stderr, "cannot load %s: %s\n", path, error_message());
    return 1;
  }
  CHECK(strcmp(error_message(), "") == 0);
  test_queries(model);
  test_queries(from_memory);
  test_arguments(model);
  test_bad_files(argv[1], bytes, size);
  test_shapes(model);
  test_predict_and_threads(model, from_memory);
  CHECK(cnnx_model_free(model) == CNNX_OK);
  CHECK(cnnx_model_free(from_memory) == CNNX_OK);
  free(bytes);
  if (failures == 0) printf("c_api_test: OK (cnnx %s)\n", version);
  return failures == 0 ? 0 : 1;
}
