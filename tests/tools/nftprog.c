/* nftprog: program an `inet mseg` table into a network namespace from a
 * built-in scenario, for the integration tests (tests/integration/nft_*.sh).
 *
 *   nftprog probe
 *   nftprog replace NETNS SCENARIO [options]
 *   nftprog update  NETNS OLD NEW [options]   adopt OLD (verify), then update to NEW
 *   nftprog apply   NETNS OLD NEW [options]   adopt OLD if in sync, then update or replace
 *   nftprog verify  NETNS SCENARIO [options]  exit 0 in sync, 1 drifted
 *   nftprog delete  NETNS
 *   nftprog genid   NETNS
 *   nftprog counters NETNS
 *   nftprog text    SCENARIO [options]        the nft text of the scenario (table_text)
 *
 * options: --mode enforce|audit  --queue auto|native|xt|nflog  --queue-num N
 *          --rate N --burst N
 * SCENARIO: basic, basic2, ingress, none, conflict, bulk:N (N exact entries),
 *           bulkiv:N (N interval entries), bulk:N+M (N exact entries, then M more)
 * After replace/update/apply a line "stats: ..." gives what was sent.
 * Exit status: 0 ok, 1 failure (or drift), 2 usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mseg/kernel/nft.h"
#include "mseg/kernel/table_text.h"

static const char *const policy_names[] = { "shop/web", "shop/db" };
#define N_POLICY_NAMES 2

/* "in 10.200.0.0/24 udp 5353-5360 @0:1" */
static const char *const sc_basic[] = {
	"in 10.200.0.2 tcp 8080 @0:0",
	"in 10.200.0.0/24 udp 5353-5360 @0:1",
	"in 10.200.0.2 icmp @1:0",
	"in 10.99.0.0/16 icmp @1:1",
	"in 10.98.0.1 any @1:2",
	"in 10.97.0.0-10.97.0.9 any @1:3",
	"in 240.0.0.0/4 any @1:4",
	"in fd00:200::2 tcp 8080 @0:0",
	"in fd00:200::/64 ipv6-icmp @1:0",
	"in fd00:300::/64 tcp @0:2",
	"in fd00:400::1 any @1:5",
	"in ffff::/16 any @1:6",
	"out 10.200.0.2 tcp 9090 @0:3",
	"out 10.200.0.2 icmp @0:4",
	"out fd00:200::2 tcp 9090 @0:3",
	"out fd00:200::/64 ipv6-icmp @0:4",
	NULL,
};

/* basic with membership changes only */
static const char *const sc_basic2[] = {
	"in 10.200.0.2 tcp 8080 @0:0",
	"in 10.200.0.2 tcp 8081 @0:5",
	"in 10.200.0.0/24 udp 5353-5370 @0:1",
	"in 10.200.0.2 icmp @1:0",
	"in 10.99.0.0/16 icmp @1:1",
	"in 10.97.0.0-10.97.0.19 any @1:3",
	"in 10.96.0.0/24 any @1:7",
	"in 240.0.0.0/4 any @1:4",
	"in fd00:200::2 tcp 8080 @0:0",
	"in fd00:200::/64 ipv6-icmp @1:0",
	"in fd00:300::/64 tcp @0:2",
	"in fd00:400::1 any @1:5",
	"out 10.200.0.2 tcp 9090 @0:3",
	"out 10.200.0.2 tcp 9091 @0:6",
	"out 10.200.0.2 icmp @0:4",
	"out fd00:200::/64 ipv6-icmp @0:4",
	NULL,
};

/* two overlapping intervals: the kernel refuses the second */
static const char *const sc_conflict[] = {
	"in 10.200.0.2 tcp 8080 @0:0",
	"in 10.200.9.0/24 tcp 80-90 @1:2",
	"in 10.200.9.0/24 tcp 85-95 @1:3",
	"out 10.200.0.2 tcp 9090 @0:3",
	NULL,
};

struct scenario {
	struct mseg_ep_plan plan;
	struct mseg_entry *ents[MSEG_DIR_COUNT];
	size_t n[MSEG_DIR_COUNT], cap[MSEG_DIR_COUNT];
};

static int proto_parse(const char *s, uint8_t *ret)
{
	static const struct { const char *name; uint8_t p; } t[] = {
		{ "any", 0 }, { "tcp", IPPROTO_TCP }, { "udp", IPPROTO_UDP },
		{ "icmp", IPPROTO_ICMP }, { "ipv6-icmp", IPPROTO_ICMPV6 },
		{ "sctp", IPPROTO_SCTP }, { "udplite", IPPROTO_UDPLITE },
	};
	char *end;
	unsigned long v;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(s, t[i].name) == 0) {
			*ret = t[i].p;
			return 0;
		}
	v = strtoul(s, &end, 10);
	if (*end || v > 255)
		return -EINVAL;
	*ret = (uint8_t)v;
	return 0;
}

static int addr_parse(const char *s, struct mseg_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a->bytes) == 1) {
		a->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a->bytes) == 1) {
		a->family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

/* "a", "a-b", "a/plen" */
static int range_parse(const char *s, struct mseg_addr *lo, struct mseg_addr *hi)
{
	char buf[128], *p;
	size_t alen;

	snprintf(buf, sizeof(buf), "%s", s);
	if ((p = strchr(buf, '/')) != NULL) {
		unsigned plen = (unsigned)atoi(p + 1);

		*p = '\0';
		if (addr_parse(buf, lo) < 0)
			return -EINVAL;
		alen = lo->family == AF_INET6 ? 16 : 4;
		if (plen > alen * 8)
			return -EINVAL;
		*hi = *lo;
		for (size_t bit = plen; bit < alen * 8; bit++) {
			lo->bytes[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
			hi->bytes[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
		}
		return 0;
	}
	if ((p = strchr(buf, '-')) != NULL) {
		*p = '\0';
		if (addr_parse(buf, lo) < 0 || addr_parse(p + 1, hi) < 0 || lo->family != hi->family)
			return -EINVAL;
		return 0;
	}
	if (addr_parse(buf, lo) < 0)
		return -EINVAL;
	*hi = *lo;
	return 0;
}

static int sc_push(struct scenario *sc, int dir, const struct mseg_entry *e)
{
	if (sc->n[dir] == sc->cap[dir]) {
		size_t ncap = sc->cap[dir] ? sc->cap[dir] * 2 : 64;
		struct mseg_entry *v = realloc(sc->ents[dir], ncap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		sc->ents[dir] = v;
		sc->cap[dir] = ncap;
	}
	sc->ents[dir][sc->n[dir]++] = *e;
	return 0;
}

/* "in 10.200.0.0/24 udp 5353-5360 @0:1" */
static int entry_parse(struct scenario *sc, const char *line)
{
	char dir[8], addr[128], proto[16], f4[32] = "", f5[32] = "";
	struct mseg_entry e = { 0 };
	const char *prov = NULL, *ports = NULL;
	int n = sscanf(line, "%7s %127s %15s %31s %31s", dir, addr, proto, f4, f5);
	int d;

	if (n < 3)
		return -EINVAL;
	d = strcmp(dir, "in") == 0 ? MSEG_DIR_INGRESS : strcmp(dir, "out") == 0 ? MSEG_DIR_EGRESS : -1;
	if (d < 0 || range_parse(addr, &e.lo, &e.hi) < 0 || proto_parse(proto, &e.proto) < 0)
		return -EINVAL;
	if (f4[0] == '@')
		prov = f4;
	else if (f4[0])
		ports = f4;
	if (f5[0] == '@')
		prov = f5;
	if (proto_has_ports(e.proto)) {
		e.port_lo = 0;
		e.port_hi = 65535;
		if (ports) {
			unsigned lo, hi;

			if (sscanf(ports, "%u-%u", &lo, &hi) == 2) {
				e.port_lo = (uint16_t)lo;
				e.port_hi = (uint16_t)hi;
			} else {
				e.port_lo = e.port_hi = (uint16_t)atoi(ports);
			}
		}
	}
	if (prov && sscanf(prov, "@%u:%u", &e.policy, &e.rule) != 2)
		return -EINVAL;
	return sc_push(sc, d, &e);
}

static void sc_release(struct scenario *sc)
{
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		free(sc->ents[d]);
	memset(sc, 0, sizeof(*sc));
}

/* N exact entries 10.128.0.0 + i . tcp . 443 (ingress), starting at @first */
static int sc_bulk(struct scenario *sc, size_t first, size_t n)
{
	for (size_t i = first; i < first + n; i++) {
		struct mseg_entry e = { .proto = IPPROTO_TCP, .port_lo = 443, .port_hi = 443 };
		uint32_t a = (10u << 24) | (128u << 16) | (uint32_t)i;

		e.lo.family = AF_INET;
		e.lo.bytes[0] = (uint8_t)(a >> 24);
		e.lo.bytes[1] = (uint8_t)(a >> 16);
		e.lo.bytes[2] = (uint8_t)(a >> 8);
		e.lo.bytes[3] = (uint8_t)a;
		e.hi = e.lo;
		e.policy = 0;
		e.rule = (uint32_t)(i % 7);
		if (sc_push(sc, MSEG_DIR_INGRESS, &e) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* N interval entries 10.(64 + i / 256).(i % 256).0/24 . tcp . 1000-1999 */
static int sc_bulkiv(struct scenario *sc, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct mseg_entry e = { .proto = IPPROTO_TCP, .port_lo = 1000, .port_hi = 1999 };

		e.lo.family = AF_INET;
		e.lo.bytes[0] = 10;
		e.lo.bytes[1] = (uint8_t)(64 + i / 256);
		e.lo.bytes[2] = (uint8_t)(i % 256);
		e.hi = e.lo;
		e.hi.bytes[3] = 255;
		if (sc_push(sc, MSEG_DIR_INGRESS, &e) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int sc_load(struct scenario *sc, const char *name, enum mseg_mode mode)
{
	const char *const *lines = NULL;
	bool iso[MSEG_DIR_COUNT] = { true, true };
	int r = 0;

	memset(sc, 0, sizeof(*sc));
	if (strcmp(name, "basic") == 0) {
		lines = sc_basic;
	} else if (strcmp(name, "basic2") == 0) {
		lines = sc_basic2;
	} else if (strcmp(name, "ingress") == 0) {
		lines = sc_basic;
		iso[MSEG_DIR_EGRESS] = false;
	} else if (strcmp(name, "conflict") == 0) {
		lines = sc_conflict;
	} else if (strcmp(name, "none") == 0) {
		iso[0] = iso[1] = false;
	} else if (strncmp(name, "bulk:", 5) == 0) {
		char *end;
		size_t n = strtoul(name + 5, &end, 10), m = 0;

		if (*end == '+')
			m = strtoul(end + 1, &end, 10);
		if (*end)
			return -EINVAL;
		r = sc_bulk(sc, 0, n);
		if (r == 0 && m)
			r = sc_bulk(sc, n, m);
		lines = sc_basic;
	} else if (strncmp(name, "bulkiv:", 7) == 0) {
		r = sc_bulkiv(sc, strtoul(name + 7, NULL, 10));
		lines = sc_basic;
	} else {
		return -ENOENT;
	}
	for (size_t i = 0; r == 0 && lines && lines[i]; i++) {
		r = entry_parse(sc, lines[i]);
		if (r < 0)
			fprintf(stderr, "nftprog: bad entry '%s'\n", lines[i]);
	}
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		sc->plan.dir[d].isolated = iso[d];
		sc->plan.dir[d].mode = mode;
		sc->plan.dir[d].entries = iso[d] ? sc->ents[d] : NULL;
		sc->plan.dir[d].n_entries = iso[d] ? sc->n[d] : 0;
	}
	return r;
}

static void print_stats(const char *what, const struct nft_stats *a, const struct nft_stats *b)
{
	printf("stats: %s batches=%llu msgs=%llu elem_msgs=%llu other_msgs=%llu "
	       "elems_added=%llu elems_deleted=%llu bytes=%llu batch_us=%llu\n",
	       what, (unsigned long long)(b->batches - a->batches),
	       (unsigned long long)(b->msgs - a->msgs),
	       (unsigned long long)(b->elem_msgs - a->elem_msgs),
	       (unsigned long long)((b->msgs - a->msgs) - (b->elem_msgs - a->elem_msgs)),
	       (unsigned long long)(b->elems_added - a->elems_added),
	       (unsigned long long)(b->elems_deleted - a->elems_deleted),
	       (unsigned long long)(b->bytes - a->bytes),
	       (unsigned long long)(b->last_batch_ns / 1000));
}

static int usage(void)
{
	fprintf(stderr,
		"usage: nftprog probe\n"
		"       nftprog replace|verify NETNS SCENARIO [options]\n"
		"       nftprog update|apply NETNS OLD NEW [options]\n"
		"       nftprog delete|genid|counters NETNS\n"
		"       nftprog text SCENARIO [options]\n"
		"options: --mode enforce|audit --queue auto|native|xt|nflog --queue-num N "
		"--rate N --burst N\n");
	return 2;
}

static int fail(const char *what, int r, const struct mseg_err *err)
{
	char buf[1024];

	if (err && err->msg[0])
		fprintf(stderr, "nftprog: %s: %s\n", what, err_format(err, buf, sizeof(buf)));
	else
		fprintf(stderr, "nftprog: %s: %s\n", what, strerror(-r));
	return 1;
}

int main(int argc, char **argv)
{
	struct table_opts opts = { .queue = QUEUE_XT, .rate = TABLE_DEFAULT_RATE,
				   .burst = TABLE_DEFAULT_BURST };
	enum mseg_mode mode = MSEG_MODE_ENFORCE;
	const char *pos[4] = { 0 };
	struct mseg_err err = { 0 };
	struct nft_stats before;
	struct netns *ns = NULL;
	struct scenario sc[2] = { 0 };
	bool queue_auto = false;
	int n_pos = 0, r, rc = 1;
	const char *cmd;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
			const char *m = argv[++i];

			if (strcmp(m, "enforce") == 0)
				mode = MSEG_MODE_ENFORCE;
			else if (strcmp(m, "audit") == 0)
				mode = MSEG_MODE_AUDIT;
			else
				return usage();
		} else if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc) {
			const char *q = argv[++i];

			if (strcmp(q, "auto") == 0)
				queue_auto = true;
			else if (strcmp(q, "native") == 0)
				opts.queue = QUEUE_NATIVE;
			else if (strcmp(q, "xt") == 0)
				opts.queue = QUEUE_XT;
			else if (strcmp(q, "nflog") == 0)
				opts.queue = QUEUE_NFLOG;
			else
				return usage();
		} else if (strcmp(argv[i], "--queue-num") == 0 && i + 1 < argc) {
			opts.queue_num = (uint16_t)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
			opts.rate = (uint32_t)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--burst") == 0 && i + 1 < argc) {
			opts.burst = (uint32_t)atoi(argv[++i]);
		} else if (argv[i][0] == '-' || n_pos == 4) {
			return usage();
		} else {
			pos[n_pos++] = argv[i];
		}
	}
	if (n_pos < 1)
		return usage();
	cmd = pos[0];

	if (strcmp(cmd, "probe") == 0 || queue_auto) {
		struct nft_features f;

		r = nft_features_probe(&f, &err);
		if (strcmp(cmd, "probe") == 0) {
			printf("queue_native=%d queue_xt=%d nflog=%d concat_interval=%d queue=%s\n",
			       f.queue_native, f.queue_xt, f.nflog, f.concat_interval,
			       queue_method_name(f.queue));
			if (f.detail[0])
				printf("missing: %s\n", f.detail);
			return r < 0 ? fail("probe", r, &err) : 0;
		}
		if (r < 0)
			return fail("probe", r, &err);
		opts.queue = f.queue;
	}

	if (strcmp(cmd, "text") == 0) {
		if (n_pos != 2)
			return usage();
		r = sc_load(&sc[0], pos[1], mode);
		if (r < 0)
			return fail("scenario", r, NULL);
		r = table_text_render(stdout, &sc[0].plan, &opts);
		sc_release(&sc[0]);
		return r < 0 ? 1 : 0;
	}

	if (n_pos < 2)
		return usage();
	r = netns_open(pos[1], &ns);
	if (r < 0)
		return fail(pos[1], r, NULL);
	before = *netns_stats(ns);

	if (strcmp(cmd, "replace") == 0 && n_pos == 3) {
		r = sc_load(&sc[0], pos[2], mode);
		if (r < 0) {
			fail("scenario", r, NULL);
			goto out;
		}
		r = ep_table_replace(ns, &sc[0].plan, &opts, policy_names, N_POLICY_NAMES, &err);
		if (r < 0) {
			fail("replace", r, &err);
			goto out;
		}
		print_stats("replace", &before, netns_stats(ns));
		rc = 0;
	} else if (strcmp(cmd, "verify") == 0 && n_pos == 3) {
		struct ep_table_report rep;

		r = sc_load(&sc[0], pos[2], mode);
		if (r < 0) {
			fail("scenario", r, NULL);
			goto out;
		}
		r = ep_table_verify(ns, &sc[0].plan, &opts, &rep, &err);
		if (r < 0) {
			fail("verify", r, &err);
			goto out;
		}
		if (rep.in_sync)
			printf("in sync (generation %u)\n", rep.genid);
		else
			printf("drifted: %zu differences (generation %u)\n%s", rep.n_diffs, rep.genid,
			       rep.text);
		rc = rep.in_sync ? 0 : 1;
		ep_table_report_release(&rep);
	} else if ((strcmp(cmd, "update") == 0 || strcmp(cmd, "apply") == 0) && n_pos == 4) {
		struct ep_table_report rep;
		bool apply = strcmp(cmd, "apply") == 0;

		r = sc_load(&sc[0], pos[2], mode);
		if (r == 0)
			r = sc_load(&sc[1], pos[3], mode);
		if (r < 0) {
			fail("scenario", r, NULL);
			goto out;
		}
		/* adopt: a table in sync with OLD may be updated */
		r = ep_table_verify(ns, &sc[0].plan, &opts, &rep, &err);
		if (r < 0) {
			fail("verify", r, &err);
			goto out;
		}
		if (!rep.in_sync)
			printf("old table drifted: %zu differences\n", rep.n_diffs);
		ep_table_report_release(&rep);
		before = *netns_stats(ns);
		if (apply)
			r = ep_table_apply(ns, &sc[0].plan, &sc[1].plan, &opts, policy_names,
					   N_POLICY_NAMES, &err);
		else
			r = ep_table_update(ns, &sc[0].plan, &sc[1].plan, &opts, policy_names,
					    N_POLICY_NAMES, &err);
		if (r < 0) {
			fail(cmd, r, &err);
			goto out;
		}
		print_stats(cmd, &before, netns_stats(ns));
		rc = 0;
	} else if (strcmp(cmd, "delete") == 0 && n_pos == 2) {
		r = ep_table_delete(ns, &err);
		if (r < 0) {
			fail("delete", r, &err);
			goto out;
		}
		print_stats("delete", &before, netns_stats(ns));
		rc = 0;
	} else if (strcmp(cmd, "genid") == 0 && n_pos == 2) {
		uint32_t gen;

		r = nft_genid_get(ns, &gen, &err);
		if (r < 0) {
			fail("genid", r, &err);
			goto out;
		}
		printf("%u\n", gen);
		rc = 0;
	} else if (strcmp(cmd, "counters") == 0 && n_pos == 2) {
		struct ep_table_counters c;

		r = ep_table_counters_read(ns, &c, &err);
		if (r < 0) {
			fail("counters", r, &err);
			goto out;
		}
		for (int d = 0; d < MSEG_DIR_COUNT; d++)
			if (c.present[d])
				printf("%s_overlimit packets=%llu bytes=%llu\n",
				       d == MSEG_DIR_INGRESS ? "in" : "out",
				       (unsigned long long)c.packets[d],
				       (unsigned long long)c.bytes[d]);
		rc = 0;
	} else {
		rc = usage();
	}
out:
	sc_release(&sc[0]);
	sc_release(&sc[1]);
	netns_free(ns);
	return rc;
}
