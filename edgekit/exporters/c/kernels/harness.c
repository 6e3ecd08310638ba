/* edgekit harness: runs ek_predict / ek_predict_int8 over samples from a file. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ek_model.h"

#define HARNESS_MAX_SAMPLES 64

static int call_int8(const void *x, void *y)
{
#ifdef EK_INPUT_ZERO_POINT /* the int8 variant */
    return ek_predict_int8((const int8_t *)x, (int8_t *)y);
#else
    (void)x;
    (void)y;
    return -1;
#endif
}

/* harness MODE IN OUT [CALLS]
 *   MODE f: float32 samples in, float32 outputs out;  q: int8 in, int8 out
 *   MODE tf / tq: time CALLS calls on the samples (cycling), write nanoseconds per call */
int main(int argc, char **argv)
{
    static float fin[EK_INPUT_SIZE], fout[EK_OUTPUT_SIZE];
    static signed char qin[EK_INPUT_SIZE], qout[EK_OUTPUT_SIZE];
    const int quant = argv[1] != NULL && (argv[1][0] == 'q' || argv[1][1] == 'q');
    const int timing = argv[1] != NULL && argv[1][0] == 't';
    const size_t n_in = quant ? sizeof qin : sizeof fin;
    const size_t n_out = quant ? sizeof qout : sizeof fout;
    FILE *in, *out;
    if (argc < 4) {
        fprintf(stderr, "usage: %s f|q|tf|tq IN OUT [CALLS]\n", argv[0]);
        return 2;
    }
    in = fopen(argv[2], "rb");
    out = fopen(argv[3], "wb");
    if (in == NULL || out == NULL) {
        perror("open");
        return 2;
    }
    if (timing) {
        long calls = argc > 4 ? atol(argv[4]) : 1000, k;
        static unsigned char samples[HARNESS_MAX_SAMPLES][sizeof fin];
        long count = 0;
        while (count < HARNESS_MAX_SAMPLES && fread(samples[count], n_in, 1, in) == 1) {
            ++count;
        }
        if (count == 0) {
            return 2;
        }
        for (k = 0; k < calls; ++k) {
            struct timespec t0, t1;
            double ns;
            const void *x = samples[k % count];
            clock_gettime(CLOCK_MONOTONIC, &t0);
            if (quant) {
                call_int8(x, qout);
            } else {
                ek_predict((const float *)x, fout);
            }
            clock_gettime(CLOCK_MONOTONIC, &t1);
            ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
            fwrite(&ns, sizeof ns, 1, out);
        }
    } else {
        while (fread(quant ? (void *)qin : (void *)fin, n_in, 1, in) == 1) {
            int rc = quant ? call_int8(qin, qout) : ek_predict(fin, fout);
            if (rc != 0) {
                return 1;
            }
            fwrite(quant ? (void *)qout : (void *)fout, n_out, 1, out);
        }
    }
    fclose(in);
    fclose(out);
    return 0;
}
