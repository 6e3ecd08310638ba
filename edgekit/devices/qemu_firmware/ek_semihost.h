/* edgekit: ARM semihosting, the few calls the QEMU harness uses. */
#ifndef EK_SEMIHOST_H_
#define EK_SEMIHOST_H_

long ek_semihost(long op, const void *arg);
void ek_exit(int status) __attribute__((noreturn));

#endif /* EK_SEMIHOST_H_ */
