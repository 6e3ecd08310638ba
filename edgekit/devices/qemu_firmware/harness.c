/* edgekit: runs EK_PREDICT on every sample of in.bin (EK_N_IN float32 each, read through
 * semihosting from QEMU's working directory) and writes its outputs to out.bin (EK_N_OUT
 * float32 each). ek_mark() is called around each inference, and twice in a row once first:
 * counting the instructions between two marks (QEMU's exec trace) gives each inference's
 * instruction count, and the empty pair the counting's own overhead.
 * Exit status: 0 done, 1 a file could not be opened or written, 2 EK_PREDICT failed. */
#include <stdint.h>

#include EK_HEADER
#include "ek_semihost.h"

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE 0x05
#define SYS_READ 0x06

static float ek_in[EK_N_IN];
static float ek_out[EK_N_OUT];

__attribute__((noinline)) void ek_mark(void)
{
    __asm__ volatile("" ::: "memory");
}

static long ek_open(const char *name, long length, long mode)
{
    long block[3] = {(long)name, mode, length};
    return ek_semihost(SYS_OPEN, block);
}

int main(void)
{
    long fin = ek_open("in.bin", 6, 1);   /* mode 1: "rb" */
    long fout = ek_open("out.bin", 7, 5); /* mode 5: "wb" */
    if (fin < 0 || fout < 0) {
        return 1;
    }
    ek_mark();
    ek_mark();
    for (;;) {
        long rd[3] = {fin, (long)ek_in, (long)sizeof ek_in};
        long wr[3] = {fout, (long)ek_out, (long)sizeof ek_out};
        int rc;
        if (ek_semihost(SYS_READ, rd) != 0) { /* the bytes not read: 0 is a whole sample */
            break;
        }
        ek_mark();
        rc = EK_PREDICT(ek_in, ek_out);
        ek_mark();
        if (rc != 0) {
            return 2;
        }
        if (ek_semihost(SYS_WRITE, wr) != 0) {
            return 1;
        }
    }
    {
        long c1[1] = {fin}, c2[1] = {fout};
        ek_semihost(SYS_CLOSE, c1);
        ek_semihost(SYS_CLOSE, c2);
    }
    return 0;
}
