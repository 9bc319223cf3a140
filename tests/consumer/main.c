/* A consumer of emel-io: builds against the installed package or add_subdirectory. */
#include <emel/io.h>
#include <emel/status.h>
#include <emel/tensor.h>
#include <emel/version.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  emel_tensors *t;
  emel_tensors_config tc = EMEL_TENSORS_CONFIG_INIT(.capacity = 1);
  if (emel_tensors_create(&t, &tc, NULL) != EMEL_OK) return 1;
  uint32_t i;
  emel_tensor_span span = {.n_dims = 1, .dims = {4, 1, 1, 1}, .size = 16};
  float storage[4] = {1, 2, 3, 4};
  if (emel_tensors_add(t, "w", 1, &span, &i, NULL) != EMEL_OK) return 1;
  if (emel_tensors_bind_external(t, i, storage, sizeof storage, NULL) != EMEL_OK) return 1;
  printf("consumer: %s, %s\n", emel_tensor_state_name(emel_tensors_state(t, i)),
         emel_status_message(EMEL_SPAN_BEYOND_EOF));
  emel_tensors_destroy(t);
  /* The installed <emel/version.h> and the library it runs with agree. */
  printf("consumer: version %s, header %s\n", emel_version(), EMEL_IO_VERSION_STRING);
  return 0;
}
