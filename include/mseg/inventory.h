/* The endpoint inventory: containers on this host with their network
 * namespace, addresses, labels and named ports. */
#ifndef MSEG_INVENTORY_H
#define MSEG_INVENTORY_H

#include "mseg/err.h"
#include "mseg/model.h"

#define INVENTORY_MAX_FILE_SIZE (16u << 20)

void inventory_init(struct mseg_inventory *inv);
void inventory_release(struct mseg_inventory *inv);

/* Parse an inventory document:
 *   endpoints:
 *     - {id: web-1, name: web, namespace: shop, labels: {app: web},
 *        netns: /run/netns/web-1, ips: [10.0.0.2, "fd00::2"],
 *        ports: [{name: http, port: 8080, protocol: TCP}]}
 * All or nothing; ids must be unique. */
int inventory_parse_buffer(struct mseg_inventory *inv, const char *name, const char *buf,
			   size_t len, struct mseg_err *err);
int inventory_load_file(struct mseg_inventory *inv, const char *path, struct mseg_err *err);

/* Insert (replacing the endpoint with the same id). Takes @ep. */
int inventory_put(struct mseg_inventory *inv, struct mseg_endpoint *ep);
int inventory_remove(struct mseg_inventory *inv, const char *id);
struct mseg_endpoint *inventory_find(const struct mseg_inventory *inv, const char *id);

struct mseg_endpoint *endpoint_free(struct mseg_endpoint *ep);

#endif
