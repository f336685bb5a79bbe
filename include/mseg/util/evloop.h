/* msegd's single event loop: epoll over every file descriptor the daemon
 * serves (signals, timers, inotify, NFQUEUE sockets, the HTTP listener). */
#ifndef MSEG_EVLOOP_H
#define MSEG_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>

struct evloop;
struct evloop_source;

/* Called with the epoll events that fired. */
typedef void (*evloop_cb)(struct evloop_source *src, uint32_t events, void *data);

struct evloop *evloop_new(void);
struct evloop *evloop_free(struct evloop *loop);

/* Watch @fd for @events (EPOLLIN, ...). The loop does not own @fd.
 * Returns NULL and sets *ret_err (if given) on failure. */
struct evloop_source *evloop_add_fd(struct evloop *loop, int fd, uint32_t events,
				    evloop_cb cb, void *data, int *ret_err);
int evloop_source_modify(struct evloop_source *src, uint32_t events);
/* Stop watching; safe to call from inside any callback, also its own. */
void evloop_source_remove(struct evloop_source *src);
int evloop_source_fd(const struct evloop_source *src);

/* Run until evloop_quit(). Returns 0 or -errno from epoll. */
int evloop_run(struct evloop *loop);
void evloop_quit(struct evloop *loop);

/* One pass with a timeout in ms (-1 = block); for tests and tools. */
int evloop_run_once(struct evloop *loop, int timeout_ms);

/* A monotonic timer (timerfd) calling @cb after @first_ms and then every
 * @interval_ms (0 = once); both 0 = created disarmed. evloop_timer_arm
 * re-arms (first_ms 0 = fire now). */
struct evloop_source *evloop_add_timer(struct evloop *loop, uint64_t first_ms,
				       uint64_t interval_ms, evloop_cb cb, void *data,
				       int *ret_err);
int evloop_timer_arm(struct evloop_source *timer, uint64_t first_ms, uint64_t interval_ms);

#endif
