/* A C app that classifies samples with the code `edgekit export --c-source` generates.
 *
 *   edgekit export runs/latest --c-source int8          # writes edgekit_model.h/.c
 *   python make_samples.py runs/latest/export samples.bin
 *   gcc -std=c99 -O2 -I runs/latest/export main.c runs/latest/export/edgekit_model.c -lm -o classify
 *   ./classify samples.bin
 *
 * samples.bin: raw float32 features, EDGEKIT_INPUT_SIZE values per sample (little-endian).
 * Prints, per sample, the index of the largest output (the class) and its score.
 * No malloc, no dependency beyond the C library.
 */
#include <stdio.h>

#include "edgekit_model.h"

int main(int argc, char **argv) {
    static float input[EDGEKIT_INPUT_SIZE];
    static float output[EDGEKIT_OUTPUT_SIZE];
    FILE *fh;
    int n = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s SAMPLES.bin\n", argv[0]);
        return 2;
    }
    fh = fopen(argv[1], "rb");
    if (fh == NULL) {
        perror(argv[1]);
        return 2;
    }
    while (fread(input, sizeof(float), EDGEKIT_INPUT_SIZE, fh) == EDGEKIT_INPUT_SIZE) {
        int best = 0;
        int i;
        if (edgekit_predict(input, output) != 0) {
            fprintf(stderr, "sample %d: prediction failed\n", n);
            fclose(fh);
            return 1;
        }
        for (i = 1; i < EDGEKIT_OUTPUT_SIZE; i++) {
            if (output[i] > output[best]) {
                best = i;
            }
        }
        printf("%d %d %.4f\n", n, best, (double)output[best]);
        n++;
    }
    fclose(fh);
    return 0;
}
