/* Minimal unit test harness: each case prints "PASS: name" or "FAIL: name";
 * tests/run counts those lines. */
#ifndef MSEG_T_H
#define MSEG_T_H

#include <stdio.h>
#include <string.h>

static int t_case_failed;
static int t_any_failed;

#define T_CHECK(cond, ...)                                                        \
	do {                                                                      \
		if (!(cond)) {                                                    \
			printf("  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			printf(__VA_ARGS__);                                      \
			printf("\n");                                             \
			t_case_failed = 1;                                        \
		}                                                                 \
	} while (0)

#define T_STREQ(a, b)                                                             \
	do {                                                                      \
		const char *t_a_ = (a), *t_b_ = (b);                              \
		T_CHECK(t_a_ && t_b_ && strcmp(t_a_, t_b_) == 0,                  \
			"\n    got:  '%s'\n    want: '%s'", t_a_ ? t_a_ : "(null)", \
			t_b_ ? t_b_ : "(null)");                                  \
	} while (0)

static inline void t_begin(void)
{
	t_case_failed = 0;
}

static inline void t_end(const char *name)
{
	printf("%s: %s\n", t_case_failed ? "FAIL" : "PASS", name);
	if (t_case_failed)
		t_any_failed = 1;
	fflush(stdout);
}

#define T_RUN(fn)              \
	do {                   \
		t_begin();     \
		fn();          \
		t_end(#fn);    \
	} while (0)

static inline int t_exit(void)
{
	return t_any_failed ? 1 : 0;
}

#endif
