/* The scripted outcomes the stub actions report, in order (see driver.c). */
#ifndef EMEL_BENCH_TAPE_H
#define EMEL_BENCH_TAPE_H

extern const int *bench_tape;
extern unsigned long bench_void_actions;

#endif
