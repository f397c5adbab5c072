#!/usr/bin/env bash
# Renders every kustomization that can be built on its own (the base, each base/<folder> and
# every overlay; the components are rendered through the overlays that include them) and checks
# that every rendered document has apiVersion, kind and metadata.name. Also checks that the NATS
# config used by Kubernetes is the same file as deploy/nats-server.conf.
#
#   k8s/render.sh                      # uses .bin/kustomize (make tools)
#   KUSTOMIZE=kustomize k8s/render.sh  # any other binary, by path or on PATH
#
# Exits non-zero when anything fails; reports every failure first.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kustomize=${KUSTOMIZE:-$root/.bin/kustomize}
if [[ $kustomize == */* && $kustomize != /* ]]; then
	kustomize=$PWD/$kustomize
fi
if ! command -v "$kustomize" >/dev/null 2>&1; then
	echo "render.sh: kustomize not found at '$kustomize' (run 'make tools' or set KUSTOMIZE)" >&2
	exit 1
fi
cd "$root"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# check_docs FILE: prints one line per document that lacks apiVersion, kind or metadata.name.
# kustomize writes normalised YAML: documents split by "---", top-level keys at column 0,
# two-space indentation, so metadata.name is the "  name:" line inside the metadata block.
check_docs() {
	awk '
		function finish() {
			if (!lines) return
			docs++
			missing = ""
			if (!api) missing = missing " apiVersion"
			if (!kind) missing = missing " kind"
			if (!name) missing = missing " metadata.name"
			if (missing != "") printf "document %d (kind %s):%s missing\n", docs, (kind ? kind : "?"), missing
		}
		function reset() { lines = 0; api = kind = name = inmeta = 0 }
		BEGIN { reset() }
		/^---[[:space:]]*$/ { finish(); reset(); next }
		/^[[:space:]]*(#.*)?$/ { next }
		{ lines++ }
		/^[^[:space:]]/ { inmeta = 0 }
		/^apiVersion:[[:space:]]*[^[:space:]"'\'']/ { api = 1 }
		/^kind:[[:space:]]*[^[:space:]"'\'']/ { kind = $2 }
		/^metadata:[[:space:]]*$/ { inmeta = 1; next }
		inmeta && /^  name:[[:space:]]*[^[:space:]"'\'']/ { name = 1 }
		inmeta && /^  name:[[:space:]]*("[^"]+"|'\''[^'\'']+'\'')/ { name = 1 }
		END { finish(); if (docs == 0) print "no documents rendered" }
	' "$1"
}

targets=(k8s/base)
for dir in k8s/base/*/ k8s/overlays/*/; do
	[[ -f ${dir}kustomization.yaml ]] && targets+=("${dir%/}")
done

failed=0
for target in "${targets[@]}"; do
	out=$tmp/$(echo "$target" | tr / _).yaml
	if ! "$kustomize" build "$target" >"$out" 2>"$out.err"; then
		echo "FAIL $target: kustomize build failed:" >&2
		sed 's/^/    /' "$out.err" >&2
		failed=$((failed + 1))
		continue
	fi
	problems=$(check_docs "$out")
	if [[ -n $problems ]]; then
		echo "FAIL $target:" >&2
		sed 's/^/    /' <<<"$problems" >&2
		failed=$((failed + 1))
		continue
	fi
	echo "ok   $target ($(grep -c '^kind:' "$out") documents)"
done

if ! cmp -s deploy/nats-server.conf k8s/base/nats/nats.conf; then
	echo "FAIL k8s/base/nats/nats.conf differs from deploy/nats-server.conf (copy it over):" >&2
	diff -u deploy/nats-server.conf k8s/base/nats/nats.conf | sed 's/^/    /' >&2 || true
	failed=$((failed + 1))
else
	echo "ok   k8s/base/nats/nats.conf = deploy/nats-server.conf"
fi

if ((failed > 0)); then
	echo "k8s render: $failed check(s) failed" >&2
	exit 1
fi
echo "k8s render: all ${#targets[@]} kustomizations render"
