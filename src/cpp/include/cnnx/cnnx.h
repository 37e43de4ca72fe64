/* The cnnx C API: load a .cnnx model file (saved by Python's model.save or C++'s
 * cnnx::save_model) and run inference from C or any language with a C FFI.
 *
 * C89/C99 compatible; the library itself is C++ (link with a C++ runtime: pkg-config's
 * `--libs cnnx` and the CMake target cnnx::cnnx add it).
 *
 * Conventions
 * - Every function returns a cnnx_status (CNNX_OK = 0 on success), except cnnx_version().
 *   Results are written through pointer arguments, only on success.
 * - On failure, cnnx_last_error() gives a message naming the function and the problem
 *   ("cnnx_model_open: cannot open 'digits.cnnx': No such file or directory",
 *   "cnnx_model_predict_f32: expected input of shape (10, 28, 28, 1), received (10, 28, 28, 3)").
 *   The message is per thread and stays valid until the next cnnx call on that thread; a call
 *   that succeeds sets it to "".
 * - No C++ exception leaves the library; running out of memory gives CNNX_ERROR_OUT_OF_MEMORY.
 * - Shapes are NHWC (channels last) and include the batch axis when they describe a batch:
 *   a batch of 10 MNIST digits is {10, 28, 28, 1}. A model's input shape is per sample: {28, 28, 1}.
 *
 * Threads
 * - One cnnx_model may be used by several threads at once: any number of threads may call
 *   cnnx_model_predict_f32 / _u8 and the query functions concurrently on the same model. Each
 *   call borrows an inference context (buffers and layer state) from a pool inside the model,
 *   so concurrent calls never share buffers, and results are bitwise the same as serial ones.
 *   The pool keeps one context per call that has run at the same time (the most concurrent
 *   calls seen), each about the size of the model's activations for 256 samples.
 * - cnnx_model_free must not run while another thread uses the model.
 */
#ifndef CNNX_CNNX_H
#define CNNX_CNNX_H

#include <stddef.h>
#include <stdint.h>

/* The library is built with hidden symbols; these functions are its exported C interface. */
#if defined(_WIN32)
#define CNNX_C_API
#elif defined(__GNUC__) || defined(__clang__)
#define CNNX_C_API __attribute__((visibility("default")))
#else
#define CNNX_C_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this interface. Functions are only ever added within one major version. */
#define CNNX_C_API_VERSION_MAJOR 1
#define CNNX_C_API_VERSION_MINOR 0

typedef enum cnnx_status {
  CNNX_OK = 0,
  CNNX_ERROR_INVALID_ARGUMENT = 1, /* a NULL pointer, an index out of range, a negative dimension */
  CNNX_ERROR_FILE = 2,             /* a file that cannot be read or is not a valid .cnnx model file */
  CNNX_ERROR_SHAPE = 3,            /* an input of the wrong shape, or an output buffer too small */
  CNNX_ERROR_OUT_OF_MEMORY = 4,    /* an allocation failed */
  CNNX_ERROR_INTERNAL = 5          /* anything else (a bug in cnnx: please report the message) */
} cnnx_status;

/* A loaded model (opaque). */
typedef struct cnnx_model cnnx_model;

/* The library's version, "MAJOR.MINOR.PATCH" (a static string; never NULL). */
CNNX_C_API const char* cnnx_version(void);

/* This thread's message for its last failed call ("" after a successful one). *message stays
 * valid until this thread's next cnnx call other than cnnx_last_error and cnnx_version. */
CNNX_C_API cnnx_status cnnx_last_error(const char** message);

/* Loads a model for inference (the optimizer state the file may hold is skipped). On success
 * *model is a new model to release with cnnx_model_free; on failure it is set to NULL and the
 * status is CNNX_ERROR_FILE for a missing, unreadable, truncated, corrupted or foreign file
 * (the message names the file and the problem). */
CNNX_C_API cnnx_status cnnx_model_open(const char* path, cnnx_model** model);
/* The same from a file's bytes in memory (copied as needed; the caller keeps `data`). `name`
 * (may be NULL) names the data in messages. */
CNNX_C_API cnnx_status cnnx_model_open_memory(const void* data, size_t size, const char* name, cnnx_model** model);
/* Releases a model and everything it holds; NULL is allowed (and does nothing). */
CNNX_C_API cnnx_status cnnx_model_free(cnnx_model* model);

/* The per-sample input shape: its rank (3 for {28, 28, 1}), then its dims into dims[0..rank)
 * (capacity: the room in dims; CNNX_ERROR_INVALID_ARGUMENT when smaller than the rank). */
CNNX_C_API cnnx_status cnnx_model_input_rank(const cnnx_model* model, size_t* rank);
CNNX_C_API cnnx_status cnnx_model_input_dims(const cnnx_model* model, int64_t* dims, size_t capacity);
/* Floats (or bytes, for cnnx_model_predict_u8) of one sample's input: the product of its dims. */
CNNX_C_API cnnx_status cnnx_model_input_size(const cnnx_model* model, size_t* size);
/* The same for the per-sample output shape ({10} for a 10-class classifier). */
CNNX_C_API cnnx_status cnnx_model_output_rank(const cnnx_model* model, size_t* rank);
CNNX_C_API cnnx_status cnnx_model_output_dims(const cnnx_model* model, int64_t* dims, size_t capacity);
CNNX_C_API cnnx_status cnnx_model_output_size(const cnnx_model* model, size_t* size);

/* The class names stored with the model (0 when it has none). *name is owned by the model and
 * valid until cnnx_model_free; it is UTF-8 and NUL-terminated. */
CNNX_C_API cnnx_status cnnx_model_class_count(const cnnx_model* model, size_t* count);
CNNX_C_API cnnx_status cnnx_model_class_name(const cnnx_model* model, size_t index, const char** name);

/* Inference on a batch of float32 samples. `shape` (rank entries) is the batch's shape, the
 * model's input shape with the batch size in front: {n, 28, 28, 1}. `input` holds the
 * shape's product of floats, row-major (NHWC). The outputs, n * output_size floats, go to
 * `output`, which has room for `output_capacity` floats. A shape that is not
 * {n, input dims...} or an output_capacity below n * output_size gives CNNX_ERROR_SHAPE
 * before anything is read or written. n = 0 is allowed (nothing is read or written; the
 * buffers may then be NULL). */
CNNX_C_API cnnx_status cnnx_model_predict_f32(cnnx_model* model, const float* input, const int64_t* shape, size_t rank,
                                              float* output, size_t output_capacity);
/* The same on 8-bit samples (pixels 0..255): each byte becomes the float 0.0 .. 255.0 and goes
 * through the model unchanged, so any scaling is the model's own: a model whose first layer
 * is Rescaling(1/255) (as Keras image models have) gets the same result as from
 * cnnx_model_predict_f32 on the bytes as floats. A model trained on inputs already divided by
 * 255 outside the model needs cnnx_model_predict_f32 on the scaled floats instead. */
CNNX_C_API cnnx_status cnnx_model_predict_u8(cnnx_model* model, const uint8_t* input, const int64_t* shape, size_t rank,
                                             float* output, size_t output_capacity);

#ifdef __cplusplus
}
#endif

#endif /* CNNX_CNNX_H */
