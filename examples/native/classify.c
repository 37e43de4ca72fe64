/* classify (C): classify.cpp's program through the C API (cnnx/cnnx.h), in C99.
 *
 *   classify_c MODEL [--top K] [--divide D] [--labels FILE] [--csv FILE] [--show N] INPUT...
 *
 * INPUT: binary PGM (P5) / PPM (P6) images with 8-bit samples, or raw IDX files of uint8 images
 * (gunzip MNIST's .gz files first). Without --divide the bytes go to cnnx_model_predict_u8 as
 * 0..255 and the model's own layers (e.g. Rescaling(1/255)) scale them; with --divide D each
 * pixel is divided by D here and cnnx_model_predict_f32 runs (examples/mnist_cnn.py scales by
 * 1/255 outside its model: use --divide 255). The output and the CSV are classify.cpp's. */
#include <cnnx/cnnx.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Prints the failure and exits: `what` is a cnnx message or this program's own. */
static void die(const char* what) {
  fprintf(stderr, "classify_c: %s\n", what);
  exit(1);
}

static void check(cnnx_status status) {
  const char* message = "";
  if (status == CNNX_OK) return;
  cnnx_last_error(&message);
  die(message);
}

static void die_file(const char* path, const char* problem) {
  char buf[4400];
  snprintf(buf, sizeof buf, "'%s': %s", path, problem);
  die(buf);
}

static unsigned char* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  unsigned char* data = NULL;
  size_t used = 0, room = 0, got;
  if (!f) die_file(path, "cannot open");
  do {
    if (used == room) {
      room = room ? room * 2 : 1 << 16;
      data = (unsigned char*)realloc(data, room);
      if (!data) die_file(path, "out of memory");
    }
    got = fread(data + used, 1, room - used, f);
    used += got;
  } while (got > 0);
  fclose(f);
  *size = used;
  return data;
}

/* uint8 images: count x [height, width, channels]; pixels points into the file's bytes. */
struct images {
  int64_t count, height, width, channels;
  const uint8_t* pixels;
  int idx;
};

static int64_t pnm_number(const unsigned char* b, size_t size, size_t* at, const char* path) {
  int64_t v = 0;
  int digits = 0;
  while (*at < size && (isspace(b[*at]) || b[*at] == '#')) {
    if (b[*at] == '#')
      while (*at < size && b[*at] != '\n') ++*at;
    else
      ++*at;
  }
  for (; *at < size && isdigit(b[*at]) && digits < 9; ++*at, ++digits) v = v * 10 + (b[*at] - '0');
  if (digits == 0) die_file(path, "a PGM/PPM header with a missing or too long number");
  return v;
}

/* IDX: 0, 0, 0x08 (uint8), rank, then rank big-endian uint32 dims, then the data. */
static size_t idx_dims(const unsigned char* b, size_t size, int64_t* dims, const char* path) {
  size_t rank, i;
  int64_t data, total = 1;
  if (size < 4 || b[0] != 0 || b[1] != 0 || b[2] != 0x08)
    die_file(path, "not a PGM/PPM image nor a uint8 IDX file (gunzip .gz files first)");
  rank = b[3];
  if (rank < 1 || rank > 4 || size < 4 + 4 * rank) die_file(path, "an IDX header of rank 0 or > 4 (truncated?)");
  data = (int64_t)(size - 4 - 4 * rank);
  for (i = 0; i < rank; ++i) {
    const unsigned char* d = b + 4 + 4 * i;
    dims[i] = ((int64_t)d[0] << 24) | ((int64_t)d[1] << 16) | ((int64_t)d[2] << 8) | d[3];
    if (total >= 0) total = dims[i] != 0 && total > data / dims[i] ? -1 : total * dims[i];
  }
  if (total != data) die_file(path, "IDX data that does not match its header's dims");
  return rank;
}

static struct images read_images(const char* path, const unsigned char* b, size_t size) {
  struct images im;
  int64_t dims[4];
  size_t rank;
  memset(&im, 0, sizeof im);
  if (size >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) {
    size_t at = 2;
    int64_t maxval;
    im.count = 1;
    im.channels = b[1] == '5' ? 1 : 3;
    im.width = pnm_number(b, size, &at, path);
    im.height = pnm_number(b, size, &at, path);
    maxval = pnm_number(b, size, &at, path);
    if (maxval < 1 || maxval > 255) die_file(path, "expected 8-bit samples (maxval 1..255)");
    ++at;
    if (at > size || (int64_t)(size - at) < im.width * im.height * im.channels) die_file(path, "truncated pixels");
    im.pixels = b + at;
    return im;
  }
  rank = idx_dims(b, size, dims, path);
  if (rank != 3 && rank != 4) die_file(path, "expected IDX images [n, h, w] or [n, h, w, c]");
  im.idx = 1;
  im.count = dims[0];
  im.height = dims[1];
  im.width = dims[2];
  im.channels = rank == 4 ? dims[3] : 1;
  im.pixels = b + 4 + 4 * rank;
  return im;
}

static int64_t argmax(const float* p, int64_t n) {
  int64_t i, best = 0;
  for (i = 1; i < n; ++i)
    if (p[i] > p[best]) best = i;
  return best;
}

/* "7 (0.99871), 3 (0.00102)": the k most probable classes of a row (ties: the lower index). */
static void print_top(const float* p, int64_t classes, int k, const char** names) {
  int64_t i, j, best;
  char* taken = (char*)calloc((size_t)classes, 1);
  if (!taken) die("out of memory");
  for (i = 0; i < k && i < classes; ++i) {
    best = -1;
    for (j = 0; j < classes; ++j)
      if (!taken[j] && (best < 0 || p[j] > p[best])) best = j;
    taken[best] = 1;
    printf("%s%s (%.5f)", i ? ", " : "", names[best], p[best]);
  }
  printf("\n");
  free(taken);
}

int main(int argc, char** argv) {
  const char *model_path = NULL, *csv_path = NULL, *labels_path = NULL;
  const char** inputs = (const char**)calloc((size_t)argc, sizeof(char*));
  int top = 3, show = 5, n_inputs = 0, i;
  float divide = 0.0f;
  cnnx_model* model = NULL;
  size_t rank = 0, classes = 0, named = 0, c;
  int64_t in_dims[8];
  char** names;
  FILE* csv = NULL;
  int64_t image_index = 0;

  for (i = 1; i < argc; ++i) {
    const char* a = argv[i];
    int has_value = i + 1 < argc;
    if (!strcmp(a, "--top") && has_value)
      top = atoi(argv[++i]);
    else if (!strcmp(a, "--show") && has_value)
      show = atoi(argv[++i]);
    else if (!strcmp(a, "--divide") && has_value)
      divide = strtof(argv[++i], NULL);
    else if (!strcmp(a, "--csv") && has_value)
      csv_path = argv[++i];
    else if (!strcmp(a, "--labels") && has_value)
      labels_path = argv[++i];
    else if (!model_path)
      model_path = a;
    else
      inputs[n_inputs++] = a;
  }
  if (!model_path || n_inputs == 0 || top < 1 || !(divide >= 0))
    die("usage: classify_c MODEL [--top K] [--divide D] [--labels FILE] [--csv FILE] [--show N] INPUT...");

  check(cnnx_model_open(model_path, &model));
  check(cnnx_model_input_rank(model, &rank));
  if (rank > 8) die("a model input of rank > 8");
  check(cnnx_model_input_dims(model, in_dims, 8));
  check(cnnx_model_output_size(model, &classes));
  check(cnnx_model_class_count(model, &named));
  names = (char**)calloc(classes, sizeof(char*));
  for (c = 0; c < classes; ++c) {
    const char* name = NULL;
    char number[24];
    if (c < named) {
      check(cnnx_model_class_name(model, c, &name));
    } else {
      snprintf(number, sizeof number, "%lu", (unsigned long)c);
      name = number;
    }
    names[c] = (char*)malloc(strlen(name) + 1);
    strcpy(names[c], name);
  }
  printf("model %s (cnnx %s): input (", model_path, cnnx_version());
  for (c = 0; c < rank; ++c) printf("%s%lld", c ? ", " : "", (long long)in_dims[c]);
  printf("), %lu classes\n", (unsigned long)classes);

  if (csv_path) {
    csv = fopen(csv_path, "w");
    if (!csv) die_file(csv_path, "cannot write");
    fprintf(csv, "image,predicted");
    for (c = 0; c < classes; ++c) fprintf(csv, ",%s", names[c]);
    fprintf(csv, "\n");
  }
  for (i = 0; i < n_inputs; ++i) {
    size_t size = 0;
    unsigned char* bytes = read_file(inputs[i], &size);
    struct images im = read_images(inputs[i], bytes, size);
    const int64_t shape[4] = {im.count, im.height, im.width, im.channels};
    const size_t pixels = (size_t)(im.count * im.height * im.width * im.channels);
    float* probs = (float*)malloc(sizeof(float) * (size_t)im.count * classes + 1);
    clock_t start = clock();
    double seconds;
    int64_t k;
    if (!probs) die("out of memory");
    if (divide > 0) {
      float* x = (float*)malloc(sizeof(float) * pixels + 1);
      size_t p;
      if (!x) die("out of memory");
      for (p = 0; p < pixels; ++p) x[p] = (float)im.pixels[p] / divide;
      check(cnnx_model_predict_f32(model, x, shape, 4, probs, (size_t)im.count * classes));
      free(x);
    } else {
      check(cnnx_model_predict_u8(model, im.pixels, shape, 4, probs, (size_t)im.count * classes));
    }
    seconds = (double)(clock() - start) / CLOCKS_PER_SEC;

    if (!im.idx) {
      printf("%s: ", inputs[i]);
      print_top(probs, (int64_t)classes, top, (const char**)names);
    } else {
      int64_t* counts = (int64_t*)calloc(classes, sizeof(int64_t));
      printf("%s: %lld images of %lldx%lldx%lld, %.3f s of CPU time\n", inputs[i], (long long)im.count,
             (long long)im.height, (long long)im.width, (long long)im.channels, seconds);
      for (k = 0; k < im.count; ++k) ++counts[argmax(probs + k * classes, (int64_t)classes)];
      printf("  predicted:");
      for (c = 0; c < classes; ++c) printf(" %s: %lld", names[c], (long long)counts[c]);
      printf("\n");
      free(counts);
      for (k = 0; k < show && k < im.count; ++k) {
        printf("  [%lld] ", (long long)k);
        print_top(probs + k * classes, (int64_t)classes, top, (const char**)names);
      }
      if (labels_path) {
        size_t label_size = 0;
        unsigned char* labels = read_file(labels_path, &label_size);
        int64_t dims[4], correct = 0;
        if (idx_dims(labels, label_size, dims, labels_path) != 1 || dims[0] != im.count)
          die_file(labels_path, "expected one uint8 label per image");
        for (k = 0; k < im.count; ++k) correct += argmax(probs + k * classes, (int64_t)classes) == labels[8 + k];
        printf("  accuracy: %.2f%% (%lld / %lld)\n", 100.0 * (double)correct / (double)im.count, (long long)correct,
               (long long)im.count);
        free(labels);
      }
    }
    if (csv)
      for (k = 0; k < im.count; ++k, ++image_index) {
        const float* p = probs + k * classes;
        fprintf(csv, "%lld,%s", (long long)image_index, names[argmax(p, (int64_t)classes)]);
        for (c = 0; c < classes; ++c) fprintf(csv, ",%.9g", p[c]);
        fprintf(csv, "\n");
      }
    free(probs);
    free(bytes);
  }
  if (csv && fclose(csv) != 0) die_file(csv_path, "cannot write");
  for (c = 0; c < classes; ++c) free(names[c]);
  free(names);
  free(inputs);
  check(cnnx_model_free(model));
  return 0;
}
