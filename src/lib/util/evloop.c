#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "mseg/util/evloop.h"

struct evloop_source {
	struct evloop *loop;
	int fd;
	bool owns_fd;        /* timers own their timerfd */
	bool dead;
	evloop_cb cb;
	void *data;
	struct evloop_source *prev, *next;   /* live sources */
	struct evloop_source *next_dead;
};

struct evloop {
	int epfd;
	bool quit;
	bool dispatching;
	struct evloop_source *live;   /* every registered source */
	struct evloop_source *dead;   /* removed during dispatch, freed after it */
};

struct evloop *evloop_new(void)
{
	struct evloop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	return loop;
}

static void evloop_reap(struct evloop *loop)
{
	while (loop->dead) {
		struct evloop_source *s = loop->dead;

		loop->dead = s->next_dead;
		if (s->owns_fd)
			close(s->fd);
		free(s);
	}
}

struct evloop *evloop_free(struct evloop *loop)
{
	if (!loop)
		return NULL;
	/* sources nobody removed (e.g. at shutdown) go with the loop */
	while (loop->live)
		evloop_source_remove(loop->live);
	evloop_reap(loop);
	close(loop->epfd);
	free(loop);
	return NULL;
}

struct evloop_source *evloop_add_fd(struct evloop *loop, int fd, uint32_t events,
				    evloop_cb cb, void *data, int *ret_err)
{
	struct evloop_source *s = calloc(1, sizeof(*s));
	struct epoll_event ev = { .events = events };

	if (!s) {
		if (ret_err)
			*ret_err = -ENOMEM;
		return NULL;
	}
	s->loop = loop;
	s->fd = fd;
	s->cb = cb;
	s->data = data;
	ev.data.ptr = s;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		if (ret_err)
			*ret_err = -errno;
		free(s);
		return NULL;
	}
	s->next = loop->live;
	if (loop->live)
		loop->live->prev = s;
	loop->live = s;
	return s;
}

int evloop_source_modify(struct evloop_source *src, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	if (epoll_ctl(src->loop->epfd, EPOLL_CTL_MOD, src->fd, &ev) < 0)
		return -errno;
	return 0;
}

void evloop_source_remove(struct evloop_source *src)
{
	if (!src || src->dead)
		return;
	epoll_ctl(src->loop->epfd, EPOLL_CTL_DEL, src->fd, NULL);
	if (src->prev)
		src->prev->next = src->next;
	else
		src->loop->live = src->next;
	if (src->next)
		src->next->prev = src->prev;
	src->dead = true;
	src->next_dead = src->loop->dead;
	src->loop->dead = src;
	if (!src->loop->dispatching)
		evloop_reap(src->loop);
}

int evloop_source_fd(const struct evloop_source *src)
{
	return src->fd;
}

int evloop_run_once(struct evloop *loop, int timeout_ms)
{
	struct epoll_event evs[64];
	int n = epoll_wait(loop->epfd, evs, 64, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	loop->dispatching = true;
	for (int i = 0; i < n; i++) {
		struct evloop_source *s = evs[i].data.ptr;

		if (s->dead)
			continue;
		if (s->owns_fd) {
			uint64_t expirations;

			/* a timer: consume the expiration count; spurious wakeups skip */
			if (read(s->fd, &expirations, sizeof(expirations)) != sizeof(expirations))
				continue;
		}
		s->cb(s, evs[i].events, s->data);
	}
	loop->dispatching = false;
	evloop_reap(loop);
	return n;
}

int evloop_run(struct evloop *loop)
{
	loop->quit = false;
	while (!loop->quit) {
		int r = evloop_run_once(loop, -1);

		if (r < 0)
			return r;
	}
	return 0;
}

void evloop_quit(struct evloop *loop)
{
	loop->quit = true;
}

int evloop_timer_arm(struct evloop_source *timer, uint64_t first_ms, uint64_t interval_ms)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = (time_t)(first_ms / 1000),
			      .tv_nsec = (long)(first_ms % 1000) * 1000000L },
		.it_interval = { .tv_sec = (time_t)(interval_ms / 1000),
				 .tv_nsec = (long)(interval_ms % 1000) * 1000000L },
	};

	/* a zero it_value disarms; "now" is 1 ns */
	if (first_ms == 0)
		its.it_value.tv_nsec = 1;
	if (timerfd_settime(timer->fd, 0, &its, NULL) < 0)
		return -errno;
	return 0;
}

struct evloop_source *evloop_add_timer(struct evloop *loop, uint64_t first_ms,
				       uint64_t interval_ms, evloop_cb cb, void *data,
				       int *ret_err)
{
	struct evloop_source *s;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	if (fd < 0) {
		if (ret_err)
			*ret_err = -errno;
		return NULL;
	}
	s = evloop_add_fd(loop, fd, EPOLLIN, cb, data, ret_err);
	if (!s) {
		close(fd);
		return NULL;
	}
	s->owns_fd = true;
	if (first_ms == 0 && interval_ms == 0)
		return s;   /* created disarmed */
	int r = evloop_timer_arm(s, first_ms, interval_ms);
	if (r < 0) {
		if (ret_err)
			*ret_err = r;
		evloop_source_remove(s);
		return NULL;
	}
	return s;
}
