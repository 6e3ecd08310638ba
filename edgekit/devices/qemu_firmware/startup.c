/* edgekit: a minimal start-up for QEMU's mps2-an386 (Cortex-M4F): the vector table, a reset
 * handler that enables the FPU, copies .data and zeroes .bss, and ARM semihosting calls
 * (BKPT 0xAB) for files and exit. No interrupt is enabled; a fault exits with status 3. */
#include <stdint.h>

#include "ek_semihost.h"

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
extern int main(void);

long ek_semihost(long op, const void *arg)
{
    register long r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void ek_exit(int status)
{
    /* SYS_EXIT_EXTENDED: ADP_Stopped_ApplicationExit with the status (QEMU exits with it) */
    long block[2] = {0x20026, status};
    ek_semihost(0x20, block);
    ek_semihost(0x18, (const void *)0x20026);
    for (;;) {
    }
}

static void ek_fault(void)
{
    ek_exit(3);
}

void ek_reset(void)
{
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end) {
        *dst++ = *src++;
    }
    for (dst = &__bss_start; dst < &__bss_end; ++dst) {
        *dst = 0;
    }
    /* CPACR: full access to CP10 and CP11 (the FPU) */
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    ek_exit(main());
}

__attribute__((section(".vectors"), used)) static const void *const ek_vectors[16] = {
    &__stack_top,      /* initial stack pointer */
    (void *)ek_reset,  /* reset */
    (void *)ek_fault,  /* NMI */
    (void *)ek_fault,  /* HardFault */
    (void *)ek_fault,  /* MemManage */
    (void *)ek_fault,  /* BusFault */
    (void *)ek_fault,  /* UsageFault */
    0, 0, 0, 0,
    (void *)ek_fault,  /* SVCall */
    (void *)ek_fault,  /* DebugMonitor */
    0,
    (void *)ek_fault,  /* PendSV */
    (void *)ek_fault,  /* SysTick */
};
