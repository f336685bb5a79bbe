/* include/mseg/util/memtune.h */
#include <malloc.h>

#include "mseg/util/memtune.h"

#define MEMTUNE_MMAP_THRESHOLD (4 << 20)
#define MEMTUNE_TRIM_THRESHOLD (8 << 20)

void memtune_apply(void)
{
	mallopt(M_MMAP_THRESHOLD, MEMTUNE_MMAP_THRESHOLD);
	mallopt(M_TRIM_THRESHOLD, MEMTUNE_TRIM_THRESHOLD);
}
