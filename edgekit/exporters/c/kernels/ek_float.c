/* edgekit float32 kernels in C99 (libm: expf).
 *
 * `export --c-source float32` pastes the sections a model needs (the text between an
 * "ek:section NAME" line and the next "ek:end" line) into <prefix>_model.c, in this order,
 * with ek_ replaced by the prefix. Outside the sections: what makes this file compile on
 * its own (gcc -std=c99 -Wall -Wextra -Werror -c), which a test does.
 */
#include <math.h>

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

/* ek:section softmax */
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
        v[i] = expf(v[i] - max);
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
    (void)ek_softmax;
}
