/* glibc malloc settings for the benchmarks that stand in for msegd's
 * programming (bench_program, bench_netpol, ...). msegd itself allocates
 * through jemalloc (Makefile), which these do not touch. */
#ifndef MSEG_MEMTUNE_H
#define MSEG_MEMTUNE_H

/* Fix glibc's mmap and trim thresholds. Left dynamic, the threshold only
 * rises after large mmapped blocks are freed; msegd keeps none, so every
 * element update mapped and unmapped its ~160 KiB of temporary arrays
 * (3x the page faults, a 1-element update 5x slower). Blocks below 4 MiB
 * now come from the heap, and up to 8 MiB of freed heap stays for the next
 * update instead of going back to the kernel. */
void memtune_apply(void);

#endif
