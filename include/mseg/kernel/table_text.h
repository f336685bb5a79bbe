/* The table msegd programs, as nft text: exactly the table of
 * docs/ruleset.md, set by set as the netlink renderer builds it (the same
 * set layout, the port-range slots included), loadable with `nft -f`.
 * Used by `mseg compile` and for showing an endpoint's desired rules. */
#ifndef MSEG_TABLE_TEXT_H
#define MSEG_TABLE_TEXT_H

#include <stdio.h>

#include "mseg/model/plan.h"

/* The `table inet mseg { ... }` of one endpoint; when no direction is
 * isolated, a single comment line instead (there is no table). 0, -EIO or
 * -ENOMEM. */
int table_text_render(FILE *f, const struct mseg_ep_plan *ep, const struct table_opts *opts);

/* "# endpoint ..." header and table of every endpoint, separated by blank
 * lines. 0, -EIO or -ENOMEM. */
int table_text_render_plan(FILE *f, const struct mseg_plan *plan, const struct table_opts *opts);

#endif
