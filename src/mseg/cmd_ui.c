/* mseg ui: the flow map (docs/ui.md) in a local browser. A browser cannot
 * reach msegd's unix socket, so this opens a listener on 127.0.0.1 that
 * forwards HTTP to it, and prints a URL with a one-time secret. The first
 * request with the secret gets a session cookie (HttpOnly, SameSite=Strict)
 * valid on this listener only; the secret cannot be used twice, and every
 * request without the cookie gets 401 and no data. Requests from other
 * origins or for other host names (DNS rebinding) get 403. One thread per
 * connection; each forwards one request and closes. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mseg.h"

#define UI_MAX_HEAD (32u << 10)
#define UI_MAX_CONNS 64
#define UI_HEAD_TIMEOUT_S 10
#define UI_SECRET_BYTES 32

enum { OPT_PORT = 'p' };

const struct cli_option ui_options[] = {
	{ "port", OPT_PORT, required_argument, "N",
	  "listen on 127.0.0.1:N (default: a free port, printed)" },
	CLI_OPTION_END,
};

struct ui_fwd {
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	unsigned port;
	char secret[2 * UI_SECRET_BYTES + 1];
	char session[2 * UI_SECRET_BYTES + 1];   /* "" until the secret is used */
	char cookie_name[32];                    /* mseg_ui_PORT */
	pthread_mutex_t lock;
	atomic_uint n_conns;
};

struct ui_conn {
	struct ui_fwd *fw;
	int fd;
};

static int random_hex(char *out, size_t n_bytes)
{
	unsigned char b[UI_SECRET_BYTES];

	if (n_bytes > sizeof(b) || getrandom(b, n_bytes, 0) != (ssize_t)n_bytes)
		return -EIO;
	for (size_t i = 0; i < n_bytes; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	explicit_bzero(b, sizeof(b));
	return 0;
}

/* constant time in the length of @want */
static bool secret_equal(const char *given, size_t given_len, const char *want)
{
	size_t n = strlen(want);
	unsigned char diff = given_len != n || n == 0;

	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(i < given_len ? given[i] : 0) ^ (unsigned char)want[i];
	return diff == 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void reply(int fd, const char *status, const char *ctype, const char *extra,
		  const char *body)
{
	char head[1024];

	snprintf(head, sizeof(head),
		 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		 "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
		 "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
		 "%sConnection: close\r\n\r\n",
		 status, ctype, strlen(body), extra ? extra : "");
	if (write_all(fd, head, strlen(head)) == 0)
		write_all(fd, body, strlen(body));
}

static const char denied_html[] =
	"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mseg flow map: not signed in</title></head>"
	"<body><h1>Not signed in</h1><p role=\"alert\">This listener shows nothing without a session. "
	"Run <code>mseg ui</code> and open the URL it prints; its secret works once.</p></body></html>\n";

static void reply_denied(int fd, bool page, const char *why)
{
	char body[256];

	if (page) {
		reply(fd, "401 Unauthorized", "text/html; charset=utf-8", NULL, denied_html);
		return;
	}
	snprintf(body, sizeof(body), "{\"error\":\"%s\",\"login\":\"mseg-ui\"}\n", why);
	reply(fd, "401 Unauthorized", "application/json", NULL, body);
}

/* The value of header @name in @head (lines after the request line), or
 * NULL; *ret_len its length. */
static const char *header_find(const char *head, const char *name, size_t *ret_len)
{
	size_t nl = strlen(name);

	for (const char *p = strstr(head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2, *end = strstr(line, "\r\n");

		if (!end)
			return NULL;
		if ((size_t)(end - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;

			while (*v == ' ' || *v == '\t')
				v++;
			*ret_len = (size_t)(end - v);
			while (*ret_len && (v[*ret_len - 1] == ' ' || v[*ret_len - 1] == '\t'))
				(*ret_len)--;
			return v;
		}
	}
	return NULL;
}

static bool header_is(const char *head, const char *name, const char *value)
{
	size_t len;
	const char *v = header_find(head, name, &len);

	return v && len == strlen(value) && strncmp(v, value, len) == 0;
}

/* our cookie's value in the Cookie header, or NULL */
static const char *cookie_find(const struct ui_fwd *fw, const char *head, size_t *ret_len)
{
	size_t len, nl = strlen(fw->cookie_name);
	const char *v = header_find(head, "Cookie", &len), *end;

	if (!v)
		return NULL;
	end = v + len;
	for (const char *p = v; p < end;) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *stop = semi ? semi : end;

		while (p < stop && *p == ' ')
			p++;
		if ((size_t)(stop - p) > nl && strncmp(p, fw->cookie_name, nl) == 0 && p[nl] == '=') {
			*ret_len = (size_t)(stop - p - nl - 1);
			return p + nl + 1;
		}
		p = stop + 1;
	}
	return NULL;
}

/* Forward the request (@head, @hlen bytes up to the blank line, and
 * @rest, @rlen bytes of body already read) to msegd and relay until
 * either side closes. */
static void forward(struct ui_fwd *fw, int fd, const char *head, size_t hlen, const char *rest,
		    size_t rlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *out = malloc(hlen + 32);
	size_t olen = 0;
	char buf[16384];
	int up;

	if (!out) {
		reply(fd, "503 Service Unavailable", "application/json", NULL,
		      "{\"error\":\"out of memory\"}\n");
		return;
	}
	/* the request line and the headers, without the cookie (msegd has no
	 * use for it) and with Connection: close */
	for (const char *p = head; p < head + hlen;) {
		const char *end = strstr(p, "\r\n");
		size_t n = (size_t)(end - p) + 2;

		if (end == p)
			break;
		if (p == head || !(strncasecmp(p, "Cookie:", 7) == 0 ||
				   strncasecmp(p, "Connection:", 11) == 0 ||
				   strncasecmp(p, "Keep-Alive:", 11) == 0 ||
				   strncasecmp(p, "Proxy-", 6) == 0 || strncasecmp(p, "Upgrade:", 8) == 0)) {
			memcpy(out + olen, p, n);
			olen += n;
		}
		p += n;
	}
	memcpy(out + olen, "Connection: close\r\n\r\n", 21);
	olen += 21;
	memcpy(sa.sun_path, fw->sock_path, strlen(fw->sock_path) + 1);
	up = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (up < 0 || connect(up, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		reply(fd, "502 Bad Gateway", "application/json", NULL,
		      "{\"error\":\"cannot reach msegd's socket\"}\n");
		goto out_close;
	}
	if (write_all(up, out, olen) < 0 || (rlen && write_all(up, rest, rlen) < 0))
		goto out_close;
	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = up, .events = POLLIN } };
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents) {
			n = recv(up, buf, sizeof(buf), 0);
			if (n <= 0 || write_all(fd, buf, (size_t)n) < 0)
				break;
		}
		if (p[0].revents) {
			/* the rest of a body, or the client hung up */
			n = recv(fd, buf, sizeof(buf), 0);
			if (n <= 0 || write_all(up, buf, (size_t)n) < 0)
				break;
		}
	}
out_close:
	if (up >= 0)
		close(up);
	free(out);
}

static void serve(struct ui_fwd *fw, int fd)
{
	char *head = malloc(UI_MAX_HEAD + 1);
	size_t len = 0, hlen, vlen, host_len;
	char method[16], target[2048], expect[64];
	const char *end = NULL, *v, *host, *q;
	bool is_page;
	struct timeval tv = { .tv_sec = UI_HEAD_TIMEOUT_S };

	if (!head)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (!end) {
		ssize_t n;

		if (len == UI_MAX_HEAD) {
			reply(fd, "431 Request Header Fields Too Large", "application/json", NULL,
			      "{\"error\":\"request headers too large\"}\n");
			goto out_free;
		}
		n = recv(fd, head + len, UI_MAX_HEAD - len, 0);
		if (n <= 0)
			goto out_free;
		len += (size_t)n;
		head[len] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	hlen = (size_t)(end - head) + 4;
	tv.tv_sec = 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sscanf(head, "%15s %2047s HTTP/1.%*c", method, target) != 2 || target[0] != '/') {
		reply(fd, "400 Bad Request", "application/json", NULL,
		      "{\"error\":\"malformed request line\"}\n");
		goto out_free;
	}
	/* only this listener's own names (no DNS rebinding) and origin */
	host = header_find(head, "Host", &host_len);
	snprintf(expect, sizeof(expect), "127.0.0.1:%u", fw->port);
	if (!host || !((host_len == strlen(expect) && strncmp(host, expect, host_len) == 0) ||
		       (snprintf(expect, sizeof(expect), "localhost:%u", fw->port),
			host_len == strlen(expect) && strncmp(host, expect, host_len) == 0))) {
		reply(fd, "403 Forbidden", "application/json", NULL,
		      "{\"error\":\"wrong Host: this listener answers only to 127.0.0.1 and localhost\"}\n");
		goto out_free;
	}
	v = header_find(head, "Origin", &vlen);
	if (v && !(vlen == host_len + 7 && strncmp(v, "http://", 7) == 0 &&
		   strncmp(v + 7, host, host_len) == 0)) {
		reply(fd, "403 Forbidden", "application/json", NULL,
		      "{\"error\":\"cross-origin request refused\"}\n");
		goto out_free;
	}
	if (header_is(head, "Sec-Fetch-Site", "cross-site")) {
		reply(fd, "403 Forbidden", "application/json", NULL,
		      "{\"error\":\"cross-site request refused\"}\n");
		goto out_free;
	}
	is_page = strcmp(method, "GET") == 0 &&
		  (strcmp(target, "/ui") == 0 || strncmp(target, "/ui/", 4) == 0);
	/* the one-time secret -> the session cookie */
	q = strchr(target, '?');
	if (q && strncmp(target, "/ui/?", 5) == 0 && strncmp(q + 1, "secret=", 7) == 0) {
		const char *s = q + 8;
		size_t slen = strcspn(s, "&");
		char extra[256];
		bool ok;

		pthread_mutex_lock(&fw->lock);
		ok = !fw->session[0] && secret_equal(s, slen, fw->secret);
		if (ok) {
			explicit_bzero(fw->secret, sizeof(fw->secret));
			ok = random_hex(fw->session, UI_SECRET_BYTES) == 0;
		}
		if (ok)
			snprintf(extra, sizeof(extra),
				 "Location: /ui/\r\nSet-Cookie: %s=%s; HttpOnly; SameSite=Strict; Path=/\r\n"
				 "Referrer-Policy: no-referrer\r\n",
				 fw->cookie_name, fw->session);
		pthread_mutex_unlock(&fw->lock);
		if (ok) {
			reply(fd, "303 See Other", "text/plain; charset=utf-8", extra, "signed in\n");
			explicit_bzero(extra, sizeof(extra));
			fprintf(stderr, "mseg ui: the secret was used; this listener now accepts that browser only\n");
		} else {
			reply_denied(fd, true, "");
		}
		goto out_free;
	}
	{
		size_t clen = 0;
		const char *c = cookie_find(fw, head, &clen);
		bool ok;

		pthread_mutex_lock(&fw->lock);
		ok = c && fw->session[0] && secret_equal(c, clen, fw->session);
		pthread_mutex_unlock(&fw->lock);
		if (!ok) {
			reply_denied(fd, is_page, "not signed in: open the URL that mseg ui printed");
			goto out_free;
		}
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	    !header_find(head, "X-Mseg-UI", &vlen)) {
		reply(fd, "403 Forbidden", "application/json", NULL,
		      "{\"error\":\"a request that is not GET must carry the header X-Mseg-UI\"}\n");
		goto out_free;
	}
	forward(fw, fd, head, hlen, head + hlen, len - hlen);
out_free:
	free(head);
}

static void *conn_thread(void *data)
{
	struct ui_conn *k = data;

	serve(k->fw, k->fd);
	close(k->fd);
	atomic_fetch_sub(&k->fw->n_conns, 1);
	free(k);
	return NULL;
}

int cmd_ui(int argc, char **argv)
{
	static struct ui_fwd fw;
	const char *server = server_name();
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	unsigned long port = 0;
	struct cli_parse p;
	struct client_buf resp = { 0 };
	pthread_attr_t attr;
	int opt, r, lfd, one = 1;
	long code;

	r = cli_parse_begin(&p, "ui", argc, argv);
	if (r)
		return r;
	while ((opt = cli_parse_next(&p, argc, argv)) != -1) {
		if (opt == OPT_PORT && number_parse(optarg, 1, 65535, &port) == 0)
			continue;
		if (opt == OPT_PORT)
			return usage_error("ui", "--port '%s': expected a port number 1-65535", optarg);
		return usage_error("ui", "bad option '%s'", argv[optind - 1]);
	}
	r = args_none("ui", argc, argv);
	if (r)
		return r;
	if (strncmp(server, "unix:", 5) != 0) {
		/* msegd's TCP listener serves the page itself, behind its token */
		printf("msegd at %s serves the flow map itself: open %s/ui/ and enter the API token\n",
		       server, server);
		return 0;
	}
	if (strlen(server + 5) >= sizeof(fw.sock_path)) {
		fprintf(stderr, "mseg: --server '%s': socket path too long\n", server);
		return 1;
	}
	snprintf(fw.sock_path, sizeof(fw.sock_path), "%s", server + 5);
	/* msegd must answer before we offer its map */
	code = api_call("GET", "/healthz", NULL, NULL, 0, &resp, NULL, NULL);
	free(resp.data);
	if (code < 0)
		return 1;
	if (code != 200) {
		fprintf(stderr, "mseg: msegd at %s answered /healthz with %ld\n", server, code);
		return 1;
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0) {
		fprintf(stderr, "mseg: socket: %s\n", strerror(errno));
		return 1;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_port = htons((uint16_t)port);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
		fprintf(stderr, "mseg: 127.0.0.1:%lu: %s\n", port, strerror(errno));
		close(lfd);
		return 1;
	}
	fw.port = ntohs(sa.sin_port);
	snprintf(fw.cookie_name, sizeof(fw.cookie_name), "mseg_ui_%u", fw.port);
	pthread_mutex_init(&fw.lock, NULL);
	if (random_hex(fw.secret, UI_SECRET_BYTES) < 0) {
		fprintf(stderr, "mseg: no random bytes for the secret\n");
		close(lfd);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	printf("mseg ui: the flow map of msegd at %s; open (the secret works once):\n"
	       "  http://127.0.0.1:%u/ui/?secret=%s\n"
	       "Ctrl-C stops it.\n",
	       server, fw.port, fw.secret);
	fflush(stdout);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		struct ui_conn *k;
		pthread_t t;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
				continue;
			fprintf(stderr, "mseg: accept: %s\n", strerror(errno));
			break;
		}
		if (atomic_load(&fw.n_conns) >= UI_MAX_CONNS) {
			reply(fd, "503 Service Unavailable", "application/json", NULL,
			      "{\"error\":\"too many connections\"}\n");
			close(fd);
			continue;
		}
		k = malloc(sizeof(*k));
		if (!k) {
			close(fd);
			continue;
		}
		k->fw = &fw;
		k->fd = fd;
		atomic_fetch_add(&fw.n_conns, 1);
		if (pthread_create(&t, &attr, conn_thread, k) != 0) {
			atomic_fetch_sub(&fw.n_conns, 1);
			close(fd);
			free(k);
		}
	}
	pthread_attr_destroy(&attr);
	close(lfd);
	return 1;
}
