/* cnnx/cnnx.h compiles as strict C89 (built with -std=c89 -pedantic-errors into c_api_test). */
#include <cnnx/cnnx.h>

int cnnx_c89_header_check(void) {
  cnnx_model* model = NULL;
  size_t rank = 0;
  cnnx_status status = cnnx_model_open("", &model);
  if (status == CNNX_OK) status = cnnx_model_input_rank(model, &rank);
  cnnx_model_free(model);
  return (int)status + (int)rank;
}
