#ifndef GB_QUANT_H
#define GB_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* Number formats of the ggml tensor types (layouts as in GGUF files). */

float gb_f16_to_f32(uint16_t h);
/* Round to nearest even; overflow becomes infinity. */
uint16_t gb_f32_to_f16(float f);
float gb_bf16_to_f32(uint16_t h);
uint16_t gb_f32_to_bf16(float f);

/* Decodes n elements (a multiple of the type's block) of a row of type into dst. */
void gb_dequant_row(uint32_t type, const void *src, float *dst, size_t n);

/* Encodes n floats as type (reference rounding of ggml). Returns 0 or CG_ECONFIG. */
int gb_quant_row(uint32_t type, const float *src, void *dst, size_t n);

/* Sum of a[i]*b[i] with several accumulators so the compiler can vectorise it. */
float gb_dot(const float *a, const float *b, size_t n);

#endif
