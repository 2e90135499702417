#!/usr/bin/env bash
# make bench-hl7: internal/hl7v2 beside an independent Node HL7 v2 parser
# (@medplum/core, pinned in node/package-lock.json), in one run, on the same
# corpus. Prints a table and whether the targets are met. It is a
# measurement: it exits 0 whatever the figures, non-zero only when it cannot
# run. See README.md beside this file.
#
# Environment:
#   DURATION=3         seconds measured per side and mode (after warm-up)
#   WARMUP=2           seconds of warm-up per side and mode (JIT, caches)
#   ROUNDS=1           repeat the four measurements, alternating Go and Node;
#                      the table shows each side's median (and the range)
#   HL7_BENCH_CORPUS   directory to take the corpus from (default: the
#                      shared reference set when present, else bench/hl7/corpus)
#   BENCH_PIN=1        pin both processes to one CPU with taskset (0: don't)
#   BENCH_CPU          which CPU to pin to (default: the last one)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
DURATION="${DURATION:-3}"
WARMUP="${WARMUP:-2}"
ROUNDS="${ROUNDS:-1}"
GO="${GO:-go}"

die() { echo "bench-hl7: $*" >&2; exit 1; }
command -v "$GO" >/dev/null || die "Go is needed"
command -v node >/dev/null || die "Node.js (20.19+) is needed for the comparison parser"
command -v npm >/dev/null || die "npm is needed to install the comparison parser"

corpus_dir="${HL7_BENCH_CORPUS:-}"
if [ -z "$corpus_dir" ]; then
	for d in /work/shared/reference "$root/../shared/reference"; do
		if [ -d "$d" ]; then corpus_dir="$d"; break; fi
	done
fi
[ -n "$corpus_dir" ] || corpus_dir="$here/corpus"
[ -d "$corpus_dir" ] || die "corpus directory $corpus_dir not found"

# Node dependencies, exactly as locked.
if [ ! -f "$here/node/node_modules/@medplum/core/package.json" ] ||
	[ "$here/node/package-lock.json" -nt "$here/node/node_modules/.package-lock.json" ]; then
	echo "bench-hl7: installing the Node parser (npm ci)" >&2
	(cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$root" && "$GO" build -o "$work/gobench" ./bench/hl7/gobench)
"$work/gobench" prepare -out "$work/corpus.json" "$corpus_dir"

pin=()
pin_note="not pinned to a CPU"
if [ "${BENCH_PIN:-1}" != 0 ] && command -v taskset >/dev/null && command -v nproc >/dev/null; then
	cpu="${BENCH_CPU:-$(($(nproc) - 1))}"
	pin=(taskset -c "$cpu")
	pin_note="both sides pinned to CPU $cpu (taskset), one after the other"
fi

run_go() {
	GOMAXPROCS=1 "${pin[@]}" "$work/gobench" run -corpus "$work/corpus.json" \
		-duration "${DURATION}s" -warmup "${WARMUP}s" "$@"
}
run_node() {
	"${pin[@]}" node --expose-gc "$here/node/bench.mjs" --corpus "$work/corpus.json" \
		--duration "$DURATION" --warmup "$WARMUP" "$@"
}

echo "bench-hl7: corpus from $corpus_dir; ${DURATION}s per measurement (+${WARMUP}s warm-up), $((ROUNDS * 4)) measurements" >&2
for ((round = 1; round <= ROUNDS; round++)); do
	dump_go=() dump_node=()
	if [ "$round" = 1 ]; then
		dump_go=(-dump-values "$work/go-values.tsv")
		dump_node=(--dump-values "$work/node-values.tsv")
	fi
	run_go -mode parse >"$work/go-parse.$round.json"
	run_node --mode parse >"$work/node-parse.$round.json"
	run_go -mode typed "${dump_go[@]}" >"$work/go-typed.$round.json"
	run_node --mode typed "${dump_node[@]}" >"$work/node-typed.$round.json"
done

if [ -n "${BENCH_HL7_KEEP:-}" ]; then
	mkdir -p "$BENCH_HL7_KEEP"
	cp "$work"/*.json "$work"/*.tsv "$BENCH_HL7_KEEP/"
fi

BENCH_PIN_NOTE="$pin_note" node "$here/node/report.mjs" "$work"
