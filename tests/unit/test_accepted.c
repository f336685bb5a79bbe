/* Accepted-connection summaries: the kernel's counters folded in (deltas,
 * a replace, an element that timed out), the bound, and the state file
 * read back; a bad line is refused naming file:line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/daemon/accepted.h"
#include "mseg/kernel/nft.h"
#include "mseg/model/addr.h"
#include "t.h"

#define MS 1000000ull
#define T0 (1796533200ull * 1000 * MS)   /* 2026-12-06T05:00:00Z */

static struct ep_seen seen(enum mseg_dir dir, const char *peer, uint8_t proto, uint16_t port,
			   uint64_t connections, uint64_t idle_ms)
{
	struct ep_seen s = { .dir = dir, .proto = proto, .has_port = port != 0, .port = port,
			     .connections = connections, .idle_ms = idle_ms };

	addr_parse(peer, &s.peer);
	return s;
}

static const struct accepted_entry *find(const struct accepted *a, const char *id, uint8_t dir,
					 const char *peer, uint8_t proto, uint16_t port)
{
	struct mseg_addr p;

	addr_parse(peer, &p);
	return accepted_entry_find(accepted_ep_find(a, id), dir, &p, proto, port);
}

#define BOTH ((1u << MSEG_DIR_INGRESS) | (1u << MSEG_DIR_EGRESS))

/* counters are cumulative: each read adds what grew; first_seen stays */
static void test_deltas(void)
{
	struct accepted *a = accepted_new(NULL);
	struct ep_seen s1[] = {
		seen(MSEG_DIR_INGRESS, "10.0.0.1", 6, 8080, 3, 500),
		seen(MSEG_DIR_EGRESS, "10.0.0.3", 17, 53, 1, 0),
	};
	struct ep_seen s2[] = {
		seen(MSEG_DIR_INGRESS, "10.0.0.1", 6, 8080, 5, 100),
		seen(MSEG_DIR_EGRESS, "10.0.0.3", 17, 53, 1, 9000),
	};
	const struct accepted_entry *e;

	T_CHECK(accepted_fold(a, "api", 7, s1, 2, BOTH, T0) == 0, "fold 1");
	T_CHECK(accepted_fold(a, "api", 7, s2, 2, BOTH, T0 + 10000 * MS) == 0, "fold 2");
	e = find(a, "api", MSEG_DIR_INGRESS, "10.0.0.1", 6, 8080);
	T_CHECK(e && e->connections == 5, "3 then 5 in the kernel: 5 in all");
	T_CHECK(e && e->first_ns == T0 - 500 * MS, "first: the first read's newest connection");
	T_CHECK(e && e->last_ns == T0 + 9900 * MS, "last: the second read's");
	e = find(a, "api", MSEG_DIR_EGRESS, "10.0.0.3", 17, 53);
	T_CHECK(e && e->connections == 1 && e->last_ns == T0, "no new connection: last unchanged");
	T_CHECK(a->n_entries == 2 && a->dropped == 0, "%zu entries", a->n_entries);
	accepted_free(a);
}

/* a replace (new table handle) and a timed-out element count from zero;
 * a direction that is not learning is left out */
static void test_reset(void)
{
	struct accepted *a = accepted_new(NULL);
	struct ep_seen s1[] = {
		seen(MSEG_DIR_INGRESS, "10.0.0.1", 6, 8080, 4, 0),
		seen(MSEG_DIR_INGRESS, "10.0.0.2", 6, 8080, 2, 0),
		seen(MSEG_DIR_EGRESS, "10.0.0.9", 6, 443, 9, 0),
	};
	struct ep_seen s2[] = { seen(MSEG_DIR_INGRESS, "10.0.0.1", 6, 8080, 6, 0) };
	struct ep_seen s3[] = {
		seen(MSEG_DIR_INGRESS, "10.0.0.1", 6, 8080, 1, 0),
		seen(MSEG_DIR_INGRESS, "10.0.0.2", 6, 8080, 1, 0),
	};
	const struct accepted_entry *e;

	T_CHECK(accepted_fold(a, "db", 7, s1, 3, 1u << MSEG_DIR_INGRESS, T0) == 0, "fold 1");
	T_CHECK(!find(a, "db", MSEG_DIR_EGRESS, "10.0.0.9", 6, 443), "egress is not learning");
	/* the same table; 10.0.0.2's element timed out */
	T_CHECK(accepted_fold(a, "db", 7, s2, 1, 1u << MSEG_DIR_INGRESS, T0) == 0, "fold 2");
	/* a replace: new handle, counters from zero; 10.0.0.2 came back */
	T_CHECK(accepted_fold(a, "db", 8, s3, 2, 1u << MSEG_DIR_INGRESS, T0) == 0, "fold 3");
	e = find(a, "db", MSEG_DIR_INGRESS, "10.0.0.1", 6, 8080);
	T_CHECK(e && e->connections == 7, "4, 6, then 1 in a new table: 7 (%llu)",
		e ? (unsigned long long)e->connections : 0);
	e = find(a, "db", MSEG_DIR_INGRESS, "10.0.0.2", 6, 8080);
	T_CHECK(e && e->connections == 3, "2, timed out, 1 again: 3");
	accepted_free(a);
}

/* at the bound, a new summary is not kept and is counted; known ones
 * still count */
static void test_bound(void)
{
	struct accepted *a = accepted_new(NULL);
	struct ep_seen s1[] = { seen(MSEG_DIR_INGRESS, "10.0.0.1", 6, 80, 1, 0),
				seen(MSEG_DIR_INGRESS, "10.0.0.2", 6, 80, 1, 0) };
	struct ep_seen s2[] = { seen(MSEG_DIR_INGRESS, "10.0.0.1", 6, 80, 2, 0),
				seen(MSEG_DIR_INGRESS, "10.0.0.3", 6, 80, 1, 0) };

	a->max_entries = 2;
	accepted_fold(a, "web", 1, s1, 2, BOTH, T0);
	accepted_fold(a, "web", 1, s2, 2, BOTH, T0);
	T_CHECK(a->n_entries == 2 && a->dropped == 1, "%zu kept, %llu dropped", a->n_entries,
		(unsigned long long)a->dropped);
	T_CHECK(find(a, "web", MSEG_DIR_INGRESS, "10.0.0.1", 6, 80)->connections == 2,
		"a known one still counts");
	accepted_free(a);
}

/* the state file: written, read back the same; a bad line names itself */
static void test_file(void)
{
	struct accepted *a = accepted_new(NULL), *b = accepted_new(NULL), *c = accepted_new(NULL);
	struct ep_seen s[] = { seen(MSEG_DIR_INGRESS, "fd00::1", 6, 8080, 3, 0),
			       seen(MSEG_DIR_EGRESS, "10.0.0.3", 1, 0, 2, 0) };
	char *text, *text2;
	size_t len, len2;
	struct mseg_err err;
	FILE *f;
	static const char bad[] = "ep web 1\nin 10.0.0.1 6 80 1 2 3 1\nin 10.0.0.400 6 80 1 2 3 1\n";

	accepted_fold(a, "web", 42, s, 2, BOTH, T0);
	text = accepted_text(a, &len);
	T_STREQ(text, "ep web 42\n"
		      "in fd00::1 6 8080 3 1796533200000000000 1796533200000000000 3\n"
		      "out 10.0.0.3 1 - 2 1796533200000000000 1796533200000000000 2\n");
	f = fmemopen(text, len, "r");
	err_clear(&err);
	T_CHECK(accepted_parse(b, "accepted", f, &err) == 0, "parse: %s", err.msg);
	fclose(f);
	text2 = accepted_text(b, &len2);
	T_STREQ(text2, text);
	T_CHECK(accepted_ep_find(b, "web")->table_handle == 42, "the table handle comes back");
	f = fmemopen((void *)bad, sizeof(bad) - 1, "r");
	err_clear(&err);
	T_CHECK(accepted_parse(c, "STATE/accepted", f, &err) < 0, "a bad address is refused");
	T_CHECK(strstr(err.msg, "STATE/accepted:3:") != NULL, "naming file:line: %s", err.msg);
	T_CHECK(c->n_entries == 1, "the lines before it are kept");
	fclose(f);
	free(text);
	free(text2);
	accepted_free(a);
	accepted_free(b);
	accepted_free(c);
}

int main(void)
{
	T_RUN(test_deltas);
	T_RUN(test_reset);
	T_RUN(test_bound);
	T_RUN(test_file);
	return t_exit();
}
