/* edgekit int8 kernels: TensorFlow Lite Micro's (or LiteRT's builtin) int8 arithmetic in
 * C99, no libm.
 *
 * `export --c-source int8` pastes the sections a model needs (the text between an
 * "ek:section NAME" line and the next "ek:end" line; "uses" names the sections it calls)
 * into <prefix>_model.c, in this order, with ek_ and EK_ replaced by the prefix,
 * EK_FC_MAX_INPUTS by the widest FULLY_CONNECTED input and EK_REQUANT by the requantization
 * of --c-rounding (ek_mbqm: TFLM, ties away from zero; ek_requant: LiteRT's ruy, ties
 * upward). Outside the sections: what makes this file compile on its own (gcc -std=c99 -Wall
 * -Wextra -Werror -c), which a test does.
 */
#include <stdint.h>

#ifndef EK_FC_MAX_INPUTS
#define EK_FC_MAX_INPUTS 64
#endif
#ifndef EK_REQUANT
#define EK_REQUANT ek_mbqm
#endif

/* ek:section srdhm */
/* gemmlowp SaturatingRoundingDoublingHighMul */
static int32_t ek_srdhm(int32_t a, int32_t b)
{
    int64_t ab, nudge;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}
/* ek:end */

/* ek:section rdbpot */
/* gemmlowp RoundingDivideByPOT: ties away from zero; arithmetic shift written portably */
static int32_t ek_rdbpot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    const int32_t shifted = x >= 0 ? (x >> exponent) : ~(~x >> exponent);
    return shifted + (remainder > threshold ? 1 : 0);
}
/* ek:end */

/* ek:section mbqm uses srdhm rdbpot */
/* TFLite MultiplyByQuantizedMultiplier (gemmlowp rounding) */
static int32_t ek_mbqm(int32_t x, int32_t multiplier, int shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return ek_rdbpot(ek_srdhm((int32_t)((int64_t)x * ((int64_t)1 << left)), multiplier), right);
}
/* ek:end */

/* ek:section requant uses srdhm */
/* TFLite's optimized FULLY_CONNECTED requantization (ruy): doubling high multiply, then a
 * rounding right shift with ties rounded upward */
static int32_t ek_requant(int32_t x, int32_t multiplier, int shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    int64_t v = ek_srdhm((int32_t)((int64_t)x * ((int64_t)1 << left)), multiplier);
    if (right > 0) {
        v += (int64_t)1 << (right - 1);
        v = v >= 0 ? (v >> right) : ~(~v >> right);
    }
    return (int32_t)v;
}
/* ek:end */

/* ek:section clamp */
static int8_t ek_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}
/* ek:end */

/* ek:section fc uses clamp */
/* FULLY_CONNECTED, symmetric weights. The input is shifted to unsigned, u = x + 128 (0..255),
 * once per layer, and bias already holds bias + (x_offset - 128) * sum(row), so that
 * acc = bias + sum(u * w) is TFLite's sum((x + x_offset) * w) + bias exactly (integers).
 * Three loops, one result:
 * - the Arm DSP extension (Cortex-M4/M7/M33 and up: __ARM_FEATURE_SIMD32): u as int16, stored
 *   pairwise reordered (u0 u2 u1 u3 per group of four) to match SXTB16's (byte 0, byte 2) and
 *   (byte 1, byte 3) pairs of four weights; SMLAD does two multiply-accumulates, as
 *   CMSIS-NN's kernels do, four rows per input load;
 * - x86 with VNNI (AVX512-VNNI or AVX-VNNI, e.g. -march=native): u as uint8, which a
 *   vectorizing compiler (-O3) turns into VPDPBUSD, four unsigned x signed byte products
 *   per lane;
 * - elsewhere: u as int16, four rows per input load (what compilers vectorize best without
 *   a byte dot product). */
#if defined(__arm__) && defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32 && \
    defined(__GNUC__)
#include <arm_acle.h> /* the compiler's own: __sxtb16, __smlad */
#define EK_FC_DSP 1
#else
#define EK_FC_DSP 0
#endif
#if !EK_FC_DSP && (defined(__AVX512VNNI__) || defined(__AVXVNNI__))
#define EK_FC_U8 1
typedef uint8_t ek_fc_in_t;
#else
#define EK_FC_U8 0
typedef int16_t ek_fc_in_t;
#endif
static ek_fc_in_t ek_u[EK_FC_MAX_INPUTS];

static int32_t ek_fc_out(int32_t acc, int32_t mult, int shift, int32_t y_offset, int32_t lo,
    int32_t hi)
{
    return ek_clamp(EK_REQUANT(acc, mult, shift) + y_offset, lo, hi);
}

#if EK_FC_DSP
static int32_t ek_load32(const void *p)
{
    int32_t v;
    __builtin_memcpy(&v, p, sizeof v); /* one LDR: these cores allow unaligned loads */
    return v;
}

/* bytes 1 and 3 of w, sign-extended to two int16 (SXTB16 with its rotation: one instruction) */
static int32_t ek_sxtb16_ror8(int32_t w)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(w));
    return r;
}

/* acc + four int8 weights at wp times the reordered int16 input pairs xa, xb */
#define EK_DOT4(acc, wp, xa, xb)                                        \
    do {                                                                \
        const int32_t w_ = ek_load32(wp);                               \
        acc = __smlad(xa, __sxtb16(w_), acc);                           \
        acc = __smlad(xb, ek_sxtb16_ror8(w_), acc);                     \
    } while (0)
#endif

#if EK_FC_DSP
/* inlined at each call, so that n_in is a constant there: one row pointer, the other three
 * rows at immediate offsets from it (no register spills in the loop) */
__attribute__((always_inline)) static inline
#else
static
#endif
void ek_fc(const int8_t *x, int n_in, const int8_t *w, const int32_t *bias, int n_out,
    int32_t y_offset, const int32_t *mult, const int8_t *shift, int32_t lo,
    int32_t hi, int8_t *y)
{
    ek_fc_in_t *const x16 = ek_u;
    const int blocks = n_out & ~3;
#if EK_FC_DSP
    const int n4 = n_in & ~3; /* the SMLAD loops take the inputs four at a time */
#else
    const int n4 = 0; /* the portable loops take them one by one */
#endif
    int o, i;
    for (i = 0; i < n4; i += 4) {
        x16[i] = (ek_fc_in_t)(x[i] + 128);
        x16[i + 1] = (ek_fc_in_t)(x[i + 2] + 128);
        x16[i + 2] = (ek_fc_in_t)(x[i + 1] + 128);
        x16[i + 3] = (ek_fc_in_t)(x[i + 3] + 128);
    }
    for (; i < n_in; ++i) {
        x16[i] = (ek_fc_in_t)(x[i] + 128);
    }
    for (o = 0; o < blocks; o += 4) {
        const int8_t *r = w + (long)o * n_in;
        int32_t a0 = bias[o], a1 = bias[o + 1], a2 = bias[o + 2], a3 = bias[o + 3];
        i = 0;
#if EK_FC_DSP
        for (; i < n4; i += 4, r += 4) {
            const int32_t xa = ek_load32(x16 + i), xb = ek_load32(x16 + i + 2);
            EK_DOT4(a0, r, xa, xb);
            EK_DOT4(a1, r + n_in, xa, xb);
            EK_DOT4(a2, r + 2 * n_in, xa, xb);
            EK_DOT4(a3, r + 3 * n_in, xa, xb);
        }
#endif
        for (; i < n_in; ++i, ++r) {
            const int32_t xi = x16[i];
            a0 += r[0] * xi;
            a1 += r[n_in] * xi;
            a2 += r[2 * n_in] * xi;
            a3 += r[3 * n_in] * xi;
        }
        y[o] = ek_fc_out(a0, mult[o], shift[o], y_offset, lo, hi);
        y[o + 1] = ek_fc_out(a1, mult[o + 1], shift[o + 1], y_offset, lo, hi);
        y[o + 2] = ek_fc_out(a2, mult[o + 2], shift[o + 2], y_offset, lo, hi);
        y[o + 3] = ek_fc_out(a3, mult[o + 3], shift[o + 3], y_offset, lo, hi);
    }
    for (o = blocks; o < n_out; ++o) {
        const int8_t *row = w + (long)o * n_in;
        int32_t acc = bias[o];
        i = 0;
#if EK_FC_DSP
        for (; i < n4; i += 4) {
            EK_DOT4(acc, row + i, ek_load32(x16 + i), ek_load32(x16 + i + 2));
        }
#endif
        for (; i < n_in; ++i) {
            acc += row[i] * (int32_t)x16[i];
        }
        y[o] = ek_fc_out(acc, mult[o], shift[o], y_offset, lo, hi);
    }
}
/* ek:end */

/* ek:section fc_offset uses clamp */
/* FULLY_CONNECTED with a weight zero point (per-tensor asymmetric weights) */
static void ek_fc_offset(const int8_t *x, int n_in, const int8_t *w, const int32_t *bias,
    int n_out, int32_t x_offset, int32_t w_offset, int32_t y_offset,
    const int32_t *mult, const int8_t *shift, int32_t lo, int32_t hi,
    int8_t *y)
{
    int o, i;
    for (o = 0; o < n_out; ++o) {
        const int8_t *row = w + (long)o * n_in;
        int32_t acc = 0;
        for (i = 0; i < n_in; ++i) {
            acc += ((int32_t)row[i] + w_offset) * ((int32_t)x[i] + x_offset);
        }
        acc = EK_REQUANT(acc + bias[o], mult[o], shift[o]) + y_offset;
        y[o] = ek_clamp(acc, lo, hi);
    }
}
/* ek:end */

/* ek:section addsub uses srdhm rdbpot clamp */
/* ADD / SUB, TFLite's general 8-bit path (left shift 20); a_step/b_step 0 broadcast a scalar */
static void ek_addsub(const int8_t *a, int a_step, const int8_t *b, int b_step, int n,
    const int32_t *q, int subtract, int8_t *y)
{
    /* q: a_offset a_mult a_right b_offset b_mult b_right out_mult out_right out_offset lo hi */
    int i;
    for (i = 0; i < n; ++i) {
        const int32_t va = ((int32_t)a[i * a_step] + q[0]) * (1 << 20);
        const int32_t vb = ((int32_t)b[i * b_step] + q[3]) * (1 << 20);
        const int32_t sa = ek_rdbpot(ek_srdhm(va, q[1]), (int)q[2]);
        const int32_t sb = ek_rdbpot(ek_srdhm(vb, q[4]), (int)q[5]);
        const int32_t raw = subtract ? sa - sb : sa + sb;
        const int32_t out = ek_rdbpot(ek_srdhm(raw, q[6]), (int)q[7]) + q[8];
        y[i] = ek_clamp(out, q[9], q[10]);
    }
}
/* ek:end */

/* ek:section mul uses mbqm clamp */
/* MUL, TFLite's 8-bit path; a_step/b_step 0 broadcast a scalar */
static void ek_mul(const int8_t *a, int a_step, const int8_t *b, int b_step, int n,
    const int32_t *q, int8_t *y)
{
    /* q: a_offset b_offset out_mult out_shift out_offset lo hi */
    int i;
    for (i = 0; i < n; ++i) {
        const int32_t prod = ((int32_t)a[i * a_step] + q[0]) * ((int32_t)b[i * b_step] + q[1]);
        y[i] = ek_clamp(ek_mbqm(prod, q[2], (int)q[3]) + q[4], q[5], q[6]);
    }
}
/* ek:end */

/* ek:section lut */
/* an elementwise int8 -> int8 function as a 256-entry table, indexed by x + 128 */
static void ek_lut(const int8_t *x, int n, const int8_t *table, int8_t *y)
{
    int i;
    for (i = 0; i < n; ++i) {
        y[i] = table[(int)x[i] + 128];
    }
}
/* ek:end */

/* ek:section round */
/* round half away from zero (std::round) without libm */
static int32_t ek_round(float v)
{
    int32_t i = (int32_t)v;
    const float r = v - (float)i;
    if (r >= 0.5f) {
        ++i;
    } else if (r <= -0.5f) {
        --i;
    }
    return i;
}
/* ek:end */

/* ek:section softmax uses round clamp */
/* SOFTMAX, TFLite's int8 kernel: exp table, float sum, round */
static void ek_softmax(const int8_t *x, int n, const float *table, float out_scale,
    int32_t out_offset, int8_t *y)
{
    int i;
    int32_t max = -128;
    const float *t;
    float sum = 0.0f, inv;
    for (i = 0; i < n; ++i) {
        if (x[i] > max) {
            max = x[i];
        }
    }
    t = table + (255 - max);
    for (i = 0; i < n; ++i) {
        sum += t[x[i]];
    }
    inv = 1.0f / (sum * out_scale);
    for (i = 0; i < n; ++i) {
        y[i] = ek_clamp(ek_round(t[x[i]] * inv) + out_offset, -128, 127);
    }
}
/* ek:end */

/* ek:section softmax_tflm uses srdhm rdbpot clamp */
/* SOFTMAX, TensorFlow Lite Micro's int8 kernel (gemmlowp fixed point): exp_table[max - x]
 * holds its Q0.31 exp_on_negative_values of the rescaled difference (0 below diff_min); the
 * sum is taken in Q12.19 and inverted with TFLite's GetReciprocal (Newton-Raphson) */
static int32_t ek_sat_shl(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

static int32_t ek_reciprocal(int32_t sum, int *bits_over_unit)
{
    int headroom = 0, k;
    int32_t half, x;
    int64_t s;
    while (headroom < 32 && !(((uint32_t)sum << headroom) & 0x80000000u)) {
        ++headroom;
    }
    *bits_over_unit = 12 - headroom;
    s = (int64_t)(int32_t)(((uint32_t)sum << headroom) - 0x80000000u) + INT32_MAX;
    half = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2); /* RoundingHalfSum(x, One) */
    x = (int32_t)((uint32_t)1515870810 + (uint32_t)ek_srdhm(half, -1010580540));
    for (k = 0; k < 3; ++k) {
        const int32_t one_minus = (int32_t)((uint32_t)1 << 29) - ek_srdhm(half, x);
        x = (int32_t)((uint32_t)x + (uint32_t)ek_sat_shl(ek_srdhm(x, one_minus), 2));
    }
    return ek_sat_shl(x, 1);
}

static void ek_softmax_tflm(const int8_t *x, int n, const int32_t *exp_table, int8_t *y)
{
    int i, bits;
    int32_t max = -128, sum = 0, scale, exponent;
    for (i = 0; i < n; ++i) {
        if (x[i] > max) {
            max = x[i];
        }
    }
    for (i = 0; i < n; ++i) {
        sum = (int32_t)((uint32_t)sum + (uint32_t)ek_rdbpot(exp_table[max - x[i]], 12));
    }
    scale = ek_reciprocal(sum, &bits);
    exponent = bits + 31 - 8;
    for (i = 0; i < n; ++i) {
        const int32_t v = ek_rdbpot(ek_srdhm(scale, exp_table[max - x[i]]), (int)exponent);
        y[i] = ek_clamp(v - 128, -128, 127);
    }
}
/* ek:end */

/* ek:section round_even */
/* v rounded to the nearest integer, ties to even (as numpy and edgekit's runners round) */
#if defined(__arm__) && defined(__ARM_FP) && (__ARM_FP & 4) && defined(__GNUC__)
/* A 32-bit Arm FPU: VCVTR rounds by FPSCR's mode, round-to-nearest-even unless the program
 * changed it; NaN gives 0; SSAT then saturates to int16, so that adding a zero point cannot
 * overflow (as the portable version's clamp to 1e9): its results wherever they are clamped
 * to int8, in about a fifth of its instructions. */
static int32_t ek_round_even(float v)
{
    union {
        float f;
        int32_t i;
    } r;
    int32_t i;
    __asm__("vcvtr.s32.f32 %0, %1" : "=t"(r.f) : "t"(v));
    __asm__("ssat %0, #16, %1" : "=r"(i) : "r"(r.i));
    return i;
}
#elif defined(__SSE2__) && defined(__GNUC__)
#include <xmmintrin.h> /* the compiler's own */
/* x86-64: CVTSS2SI rounds by MXCSR's mode, round-to-nearest-even unless the program changed
 * it; out-of-range values give INT32_MIN, so NaN is mapped to 0 first and large values
 * clamped, as the portable version does. */
static int32_t ek_round_even(float v)
{
    if (v != v) {
        v = 0.0f;
    }
    v = v > 1e9f ? 1e9f : (v < -1e9f ? -1e9f : v);
    return _mm_cvtss_si32(_mm_set_ss(v));
}
#else
static int32_t ek_round_even(float v)
{
    int32_t i;
    float r;
    if (v != v) {
        v = 0.0f;
    }
    v = v > 1e9f ? 1e9f : (v < -1e9f ? -1e9f : v);
    i = (int32_t)v;
    r = v - (float)i;
    if (r > 0.5f || (r == 0.5f && (i & 1))) {
        ++i;
    } else if (r < -0.5f || (r == -0.5f && (i & 1))) {
        --i;
    }
    return i;
}
#endif
/* ek:end */

/* ek:section quantize uses round_even clamp */
/* round(x / scale) + zero_point, clamped to int8: the .tflite input's own quantization */
static int8_t ek_quantize(float x, float scale, int32_t zero_point)
{
    return ek_clamp(ek_round_even(x / scale) + zero_point, -128, 127);
}
/* ek:end */

/* ek:section quantize_feature uses round_even clamp */
/* round(x / scale + zero_point), clamped to int8: the raw features' input quantization (per
   feature, zero points need not be integers) as edgekit's runners apply it */
static int8_t ek_quantize_feature(float x, float scale, float zero_point)
{
    return ek_clamp(ek_round_even(x / scale + zero_point), -128, 127);
}
/* ek:end */

/* Uses every kernel, so that this file compiles on its own without unused-function warnings. */
void ek_int8_kernels(void);
void ek_int8_kernels(void)
{
    (void)ek_mbqm;
    (void)ek_fc;
    (void)ek_fc_offset;
    (void)ek_addsub;
    (void)ek_mul;
    (void)ek_lut;
    (void)ek_softmax;
    (void)ek_softmax_tflm;
    (void)ek_requant;
    (void)ek_round_even;
    (void)ek_quantize;
    (void)ek_quantize_feature;
}
