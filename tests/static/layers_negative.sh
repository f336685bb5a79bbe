#!/bin/bash
# layers.sh must fail when a lower layer includes a higher one, when a file
# sits outside every layer folder, and when a bare include names a header
# that is not next to the file: each is injected into a copy of the tree.
cd "$(dirname "$0")/../.." || exit 1
tmp=$(mktemp -d /tmp/mseg-layers.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0

# expect NAME PATTERN: layers.sh on $tmp/tree fails and prints PATTERN
expect() {
	local out
	out=$(bash tests/static/layers.sh "$tmp/tree" 2>&1)
	if [ $? -ne 0 ] && grep -q -- "$2" <<<"$out"; then
		echo "PASS: $1"
	else
		echo "FAIL: $1"; echo "$out" | head -5; fails=$((fails + 1))
	fi
}
fresh() { rm -rf "$tmp/tree"; mkdir -p "$tmp/tree"; cp -r src include "$tmp/tree/"; }

fresh
if bash tests/static/layers.sh "$tmp/tree" >/dev/null; then
	echo "PASS: the copy of the tree passes as it is"
else
	echo "FAIL: the copy of the tree passes as it is"; fails=$((fails + 1))
fi

fresh
sed -i '0,/#include "mseg\/model\/addr.h"/s//&\n#include "mseg\/api\/api.h"/' "$tmp/tree/src/lib/model/addr.c"
expect "model including api is refused" 'src/lib/model/addr.c (model) includes "mseg/api/api.h" (api)'

fresh
echo '#include "daemon/daemon.h"' >>"$tmp/tree/include/mseg/kernel/nft.h"
expect "a public kernel header including a daemon header is refused" 'include/mseg/kernel/nft.h (kernel) includes "daemon/daemon.h" (daemon)'

fresh
touch "$tmp/tree/src/lib/stray.c"
expect "a file outside the layer folders is refused" 'src/lib/stray.c is in no layer folder'

fresh
echo '#include "netns.h"' >>"$tmp/tree/src/lib/packet/pkt.c"
expect "a bare include of a header from another folder is refused" 'includes "netns.h", which is not next to it'
[ "$fails" -eq 0 ]
