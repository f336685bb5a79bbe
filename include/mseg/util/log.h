/* The one logging module. Only programs (msegd, the CLI's main) log; library
 * code returns errors. The macros test the level before evaluating arguments. */
#ifndef MSEG_LOG_H
#define MSEG_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

extern enum log_level log_max_level;

/* "error", "warn", "info", "debug"; -EINVAL for anything else. */
int log_level_parse(const char *s, enum log_level *ret_level);
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_AT(lvl, ...)                                  \
	do {                                              \
		if ((lvl) <= log_max_level)               \
			log_write((lvl), __VA_ARGS__);    \
	} while (0)

#define log_error(...) LOG_AT(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
