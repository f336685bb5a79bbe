#!/bin/bash
# The include direction between the layers of src/lib (docs/architecture.md).
# Each file lives in a layer folder, src/lib/LAYER/ or include/mseg/LAYER/; a
# file may include headers of its own layer and of the layers listed for it
# below, nothing else. A lower layer including a higher one fails this test,
# and so does a file outside every layer folder.
#
#   layers.sh [ROOT]   check the tree at ROOT (default: this repository)
cd "${1:-$(dirname "$0")/../..}" || exit 1

declare -A MAY=(
	[util]=""
	[model]="util"
	[compile]="model util"
	[kernel]="compile model util"
	[packet]="kernel model util"
	[kube]="client model util"
	[daemon]="kube packet kernel compile model util"
	[api]="daemon kube packet kernel compile model util"
	[client]="util"
	[cni]="client util"
)

fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# layer_of_include FILE-LAYER INCLUDED-NAME: the layer the included header is in
layer_of_include() {
	case $2 in
	mseg/*/*) l=${2#mseg/}; echo "${l%%/*}" ;;
	*/*) echo "${2%%/*}" ;;
	*) echo "$1" ;;   # a bare name: next to the including file
	esac
}

if git rev-parse --show-prefix >/dev/null 2>&1 && [ -z "${1:-}" ]; then
	files=$(git ls-files --cached --others --exclude-standard 'src/lib/*' 'include/*')
else
	files=$(find src/lib include -type f | sort)
fi
checked=0
for f in $files; do
	case $f in src/lib/*/*|include/mseg/*/*) ;; *) bad "$f is in no layer folder"; continue ;; esac
	rel=${f#src/lib/}; rel=${rel#include/mseg/}
	layer=${rel%%/*}
	[ -n "${MAY[$layer]+x}" ] || { bad "$f: '$layer' is not a layer"; continue; }
	while IFS= read -r inc; do
		to=$(layer_of_include "$layer" "$inc")
		if [ -z "${MAY[$to]+x}" ]; then
			bad "$f includes \"$inc\": '$to' is not a layer"
		elif [ "$to" != "$layer" ] && ! [[ " ${MAY[$layer]} " == *" $to "* ]]; then
			bad "$f ($layer) includes \"$inc\" ($to): $layer may include only ${MAY[$layer]:-nothing}"
		elif [ "$to" = "$layer" ] && [[ $inc != */* ]] && [ ! -e "$(dirname "$f")/$inc" ]; then
			bad "$f includes \"$inc\", which is not next to it"
		fi
		checked=$((checked + 1))
	done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done
[ "$checked" -gt 0 ] || bad "no include was checked"
[ "$fails" -eq 0 ] && echo "PASS: $checked includes follow the layer order"
[ "$fails" -eq 0 ]
