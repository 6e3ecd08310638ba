/* edgekit float32 kernels in C99, without libm.
 *
 * `export --c-source float32` pastes the sections a model needs (the text between an
 * "ek:section NAME" line and the next "ek:end" line) into <prefix>_model.c, in this order,
 * with ek_ replaced by the prefix. Outside the sections: what makes this file compile on
 * its own (gcc -std=c99 -Wall -Wextra -Werror -c), which a test does.
 *
 * The exponential, expm1, tanh, erf and square root are edgekit's own, so the generated C
 * calls no libm function and never touches errno (on newlib, expf alone pulls its reentrancy
 * structure, impure_data, into RAM). Over all 2^32 float32 inputs the largest errors,
 * in ulp of the correctly rounded result, are: exp 0.95, expm1 1.48, tanh 1.44, erf 1.23,
 * sqrt 0.75 (tests/exporters/test_c_float_math.py checks a dense grid against numpy). NaN
 * stays NaN, the infinities give the limits, overflow gives +inf, underflow 0, and the sign
 * of zero is kept. The polynomials are minimax fits (Lawson's iteration on Chebyshev nodes,
 * against 30-digit values) of the stated functions over the stated ranges, rounded to float.
 * Compile without -ffast-math: the range reductions depend on float rounding.
 */
#include <stdint.h>

/* ek:section dense */
static void ek_dense(const float *x, int n_in, const float *w, const float *b,
    int n_out, float *y)
{
    int o, i;
    for (o = 0; o < n_out; ++o) {
        const float *row = w + (long)o * n_in;
        float acc = 0.0f;
        for (i = 0; i < n_in; ++i) {
            acc += row[i] * x[i];
        }
        y[o] = b ? acc + b[o] : acc;
    }
}
/* ek:end */

/* ek:section ldexp */
/* y * 2^k for -150 <= k <= 128: exact while the result is normal; for y within [0.25, 4) a
 * subnormal result is rounded once, and beyond the largest float it is infinity. */
static float ek_ldexpf(float y, int k)
{
    union {
        float f;
        uint32_t u;
    } s;
    if (k > 127) {
        y *= 2.0f;
        k -= 1;
    }
    if (k < -126) {
        s.u = (uint32_t)(k + 126 + 127) << 23;
        return (y * s.f) * 1.17549435e-38f; /* exact, then one rounding by 2^-126 */
    }
    s.u = (uint32_t)(k + 127) << 23;
    return y * s.f;
}
/* ek:end */

/* ek:section expm1r */
/* e^r - 1 for |r| <= ln(2)/2: r + r^2 Q(r), Q the degree-5 minimax fit of
 * (e^r - 1 - r) / r^2 weighted by the relative error of e^r - 1 (2.4e-10). */
static float ek_expm1r(float r)
{
    const float q = 5.00000000e-01f + r * (1.66666657e-01f + r * (4.16663587e-02f
        + r * (8.33338965e-03f + r * (1.39406684e-03f + r * 1.98458816e-04f))));
    return r + r * r * q;
}
/* ek:end */

/* ek:section exp uses ldexp expm1r */
/* e^x: x = k ln2 + r (Cody-Waite: ln2 in two parts, the first exact in k * ln2_hi), then
 * 2^k (1 + (e^r - 1)). */
static float ek_expf(float x)
{
    float r;
    int k;
    if (!(x < 89.0f)) {
        return x * 1.7e38f; /* NaN stays NaN; +inf and overflow give +inf */
    }
    if (x < -104.0f) {
        return 0.0f; /* below half the smallest subnormal, and -inf */
    }
    k = (int)(x * 1.44269502f + (x < 0.0f ? -0.5f : 0.5f));
    r = (x - (float)k * 6.93145752e-01f) - (float)k * 1.42860677e-06f;
    return ek_ldexpf(1.0f + ek_expm1r(r), k);
}
/* ek:end */

/* ek:section expm1 uses ldexp expm1r */
/* e^x - 1, accurate near 0 (ELU, SELU): the polynomial itself for |x| <= ln(2)/2,
 * else 2^k (e^r - 1) + (2^k - 1), both terms exact before the one rounding of the sum. */
static float ek_expm1f(float x)
{
    float r, p;
    int k;
    if (!(x < 89.0f)) {
        return x * 1.7e38f; /* NaN, +inf, overflow */
    }
    if (x < -17.5f) {
        return -1.0f; /* e^x is below half an ulp of 1, and -inf */
    }
    if (x > -0.346573591f && x < 0.346573591f) {
        return x == 0.0f ? x : ek_expm1r(x); /* keeps -0 */
    }
    k = (int)(x * 1.44269502f + (x < 0.0f ? -0.5f : 0.5f));
    r = (x - (float)k * 6.93145752e-01f) - (float)k * 1.42860677e-06f;
    p = ek_expm1r(r);
    if (k > 24) {
        return ek_ldexpf(1.0f + p, k); /* 2^k - 1 == 2^k in float */
    }
    return ek_ldexpf(p, k) + (ek_ldexpf(1.0f, k) - 1.0f);
}
/* ek:end */

/* ek:section tanh uses exp */
/* tanh(x) = x + x^3 T(x^2) for |x| < 0.55 (T: the degree-4 fit of (tanh(x) / x - 1) / x^2,
 * relative error 1e-9), else 1 - 2 / (e^(2|x|) + 1) with the sign of x, and +-1 above 9.5. */
static float ek_tanhf(float x)
{
    const float a = x < 0.0f ? -x : x;
    float t;
    if (a != a || a < 2.44140625e-04f) {
        return x; /* NaN; below 2^-12 (+-0 too) tanh(x) rounds to x */
    }
    if (a < 0.55f) {
        const float z = x * x;
        return x + x * z * (-3.33333164e-01f + z * (1.33325860e-01f + z * (-5.38523085e-02f
            + z * (2.10716799e-02f + z * -6.27423963e-03f))));
    }
    if (a > 9.5f) {
        t = 1.0f; /* 1 - tanh(a) is below half an ulp of 1, and +-inf */
    } else {
        t = 1.0f - 2.0f / (ek_expf(a + a) + 1.0f);
    }
    return x < 0.0f ? -t : t;
}
/* ek:end */

/* ek:section erf uses exp */
/* erf(x) = x + x P(x^2) for |x| < 0.875 (P: the degree-5 fit of erf(x) / x - 1, relative
 * error of erf 8.5e-9), else 1 - e^(-x^2) R(1/|x| - 0.6) with the sign of x (R: the degree-7 fit of
 * erfc(x) e^(x^2) over [0.875, 4], absolute error of erfc 1.6e-9), and +-1 from |x| = 4. */
static float ek_erff(float x)
{
    const float a = x < 0.0f ? -x : x;
    float y;
    if (a != a) {
        return x;
    }
    if (a < 0.875f) {
        const float z = x * x;
        return x + x * (1.28379151e-01f + z * (-3.76125515e-01f + z * (1.12824552e-01f
            + z * (-2.67914664e-02f + z * (5.03218640e-03f + z * -6.20327890e-04f)))));
    }
    if (a >= 4.0f) {
        y = 1.0f;
    } else {
        const float u = 1.0f / a - 0.6f;
        const float r = 2.96287447e-01f + u * (3.90984058e-01f + u * (-1.75573066e-01f
            + u * (4.10564914e-02f + u * (2.95337979e-02f + u * (-5.13579622e-02f
            + u * (3.85662355e-02f + u * -1.31554240e-02f))))));
        y = 1.0f - ek_expf(-(a * a)) * r;
    }
    return x < 0.0f ? -y : y;
}
/* ek:end */

/* ek:section sqrt */
/* sqrt(x) within an ulp: a first guess from the bits (x's exponent halved), three Newton
 * steps; subnormals are scaled by 2^48 first. sqrt(-0) = -0, sqrt(+inf) = +inf, NaN below 0. */
static float ek_sqrtf(float x)
{
    union {
        float f;
        uint32_t u;
    } s;
    float y, scale = 1.0f;
    if (!(x > 0.0f) || x > 3.40282347e+38f) {
        if (x < 0.0f) {
            s.u = 0x7fc00000u; /* a quiet NaN */
            return s.f;
        }
        return x; /* NaN, +-0, +inf */
    }
    if (x < 1.17549435e-38f) {
        x *= 281474976710656.0f; /* 2^48 */
        scale = 5.96046448e-08f; /* 2^-24 */
    }
    s.f = x;
    s.u = (s.u >> 1) + 0x1fbd1df5u;
    y = s.f;
    y = 0.5f * (y + x / y);
    y = 0.5f * (y + x / y);
    y = 0.5f * (y + x / y);
    return y * scale;
}
/* ek:end */

/* ek:section softmax uses exp */
static void ek_softmax(float *v, int n)
{
    int i;
    float max = v[0], sum = 0.0f;
    for (i = 1; i < n; ++i) {
        if (v[i] > max) {
            max = v[i];
        }
    }
    for (i = 0; i < n; ++i) {
        v[i] = ek_expf(v[i] - max);
        sum += v[i];
    }
    for (i = 0; i < n; ++i) {
        v[i] = v[i] / sum;
    }
}
/* ek:end */

/* Uses every kernel, so that this file compiles on its own without unused-function warnings. */
void ek_float_kernels(void);
void ek_float_kernels(void)
{
    (void)ek_dense;
    (void)ek_ldexpf;
    (void)ek_expm1r;
    (void)ek_expf;
    (void)ek_expm1f;
    (void)ek_tanhf;
    (void)ek_erff;
    (void)ek_sqrtf;
    (void)ek_softmax;
}
