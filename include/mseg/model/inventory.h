/* The endpoint inventory: containers on this host with their network
 * namespace, addresses, labels and named ports. */
#ifndef MSEG_INVENTORY_H
#define MSEG_INVENTORY_H

#include "mseg/util/err.h"
#include "mseg/model/model.h"

#define INVENTORY_MAX_FILE_SIZE (16u << 20)
#define INVENTORY_MAX_DEPTH 32            /* nesting of maps and sequences */
#define INVENTORY_MAX_NODES 1000000       /* YAML nodes per file or body */

void inventory_init(struct mseg_inventory *inv);
void inventory_release(struct mseg_inventory *inv);

/* Parse an inventory document:
 *   endpoints:
 *     - {id: web-1, name: web, namespace: shop, labels: {app: web},
 *        netns: /run/netns/web-1, ips: [10.0.0.2, "fd00::2"],
 *        ports: [{name: http, port: 8080, protocol: TCP}]}
 * A file may hold several documents. All or nothing: on error @inv is
 * untouched. Ids must be unique within the buffer and new to @inv. */
int inventory_parse_buffer(struct mseg_inventory *inv, const char *name, const char *buf,
			   size_t len, struct mseg_err *err);
int inventory_load_file(struct mseg_inventory *inv, const char *path, struct mseg_err *err);

/* One endpoint as a REST body (YAML or JSON): a mapping with the keys of an
 * inventory entry; "id" may be left out and must equal @id when given (@id
 * NULL: "id" is required). */
int endpoint_parse_buffer(const char *id, const char *name, const char *buf, size_t len,
			  struct mseg_endpoint **ret_ep, struct mseg_err *err);

/* Insert (replacing and freeing the endpoint with the same id). Takes @ep
 * on success; on error (-EINVAL without an id, -ENOMEM) the caller keeps it. */
int inventory_put(struct mseg_inventory *inv, struct mseg_endpoint *ep);
/* Remove and free; -ENOENT if absent. */
int inventory_remove(struct mseg_inventory *inv, const char *id);
/* Binary search by id; NULL if absent. */
struct mseg_endpoint *inventory_find(const struct mseg_inventory *inv, const char *id);

struct mseg_endpoint *endpoint_free(struct mseg_endpoint *ep);

#endif
