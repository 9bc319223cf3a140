/* Decoding of validated metadata values. */
#include "internal.h"

#include <string.h>

uint32_t emel_gguf_value_size(uint32_t type) {
  static const uint8_t sizes[EMEL_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  return type < EMEL_GGUF_TYPE_COUNT ? sizes[type] : 0;
}

static void decode_number(const uint8_t *p, uint32_t type, emel_gguf_value *out) {
  uint32_t u32;
  uint64_t u64;
  switch (type) {
  case EMEL_GGUF_TYPE_UINT8: out->v.u8 = p[0]; break;
  case EMEL_GGUF_TYPE_INT8: out->v.i8 = (int8_t)p[0]; break;
  case EMEL_GGUF_TYPE_UINT16: out->v.u16 = gguf_le16(p); break;
  case EMEL_GGUF_TYPE_INT16: out->v.i16 = (int16_t)gguf_le16(p); break;
  case EMEL_GGUF_TYPE_UINT32: out->v.u32 = gguf_le32(p); break;
  case EMEL_GGUF_TYPE_INT32: out->v.i32 = (int32_t)gguf_le32(p); break;
  case EMEL_GGUF_TYPE_FLOAT32: u32 = gguf_le32(p); memcpy(&out->v.f32, &u32, 4); break;
  case EMEL_GGUF_TYPE_BOOL: out->v.b = p[0] != 0; break;
  case EMEL_GGUF_TYPE_UINT64: out->v.u64 = gguf_le64(p); break;
  case EMEL_GGUF_TYPE_INT64: out->v.i64 = (int64_t)gguf_le64(p); break;
  case EMEL_GGUF_TYPE_FLOAT64: u64 = gguf_le64(p); memcpy(&out->v.f64, &u64, 8); break;
  default: break;
  }
}

void emel_gguf_decode(const uint8_t *base, uint64_t pos, uint32_t type, emel_gguf_value *out) {
  memset(out, 0, sizeof *out);
  out->type = type;
  const uint8_t *p = base + pos;
  if (type == EMEL_GGUF_TYPE_STRING) {
    out->v.str.len = gguf_le64(p);
    out->v.str.ptr = (const char *)p + 8;
  } else if (type == EMEL_GGUF_TYPE_ARRAY) {
    out->v.arr.elem_type = gguf_le32(p);
    out->v.arr.count = gguf_le64(p + 4);
    out->v.arr.base_ = base;
    out->v.arr.pos_ = pos + 12;
  } else {
    decode_number(p, type, out);
  }
}

uint64_t emel_gguf_value_span(const uint8_t *base, uint64_t pos, uint32_t type) {
  if (type == EMEL_GGUF_TYPE_STRING) return 8 + gguf_le64(base + pos);
  if (type != EMEL_GGUF_TYPE_ARRAY) return emel_gguf_value_size(type);
  uint32_t et = gguf_le32(base + pos);
  uint64_t count = gguf_le64(base + pos + 4), span = 12;
  if (emel_gguf_value_size(et)) return span + count * emel_gguf_value_size(et);
  for (uint64_t i = 0; i < count; i++) span += emel_gguf_value_span(base, pos + span, et);
  return span;
}

emel_status emel_gguf_array_get(const emel_gguf_array *a, uint64_t i, emel_gguf_value *out) {
  if (!a || !out || !a->base_ || i >= a->count) return EMEL_INVALID_ARGUMENT;
  uint32_t size = emel_gguf_value_size(a->elem_type);
  uint64_t pos = a->pos_;
  if (size) {
    pos += i * size;
  } else if (a->index_) {
    pos = a->index_[i];
  } else { /* nested arrays: walk, they are rare and small */
    for (uint64_t k = 0; k < i; k++) pos += emel_gguf_value_span(a->base_, pos, a->elem_type);
  }
  emel_gguf_decode(a->base_, pos, a->elem_type, out);
  return EMEL_OK;
}
