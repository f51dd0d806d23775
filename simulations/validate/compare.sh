#!/usr/bin/env bash
# compare.sh: the simulator checked against a real cluster. It runs one
# scenario (default: simulations/scenarios/validate-5.yaml: 5 members,
# steady load, one member killed half way) twice: in the simulator
# (`tlsring sim -json`) and against real `tlsring peer -tls-listen`
# processes on loopback with real TLS clients (`tlsring real-cluster
# -scenario`, the same parameters), then prints both side by side. It exits
# nonzero if the resumption rates before or after the kill differ by more
# than TOLERANCE_PP percentage points in any run, or, with LATENCY_FACTOR,
# if the handshake p50 differs by more than that factor either way (p99,
# lookup latency and member CPU are shown, not checked).
#
# Usage: simulations/validate/compare.sh [SCENARIO]
# Environment: SCALE (arrival rate multiplier, default 0.15: about 45
# handshakes/s at the end of validate-5), RUNS (real runs, default 1),
# TOLERANCE_PP (default 2), LATENCY_FACTOR (default: shown, not checked),
# DEADLINE (replaces the scenario's tlsring.deadlines in both runs, e.g.
# 250ms: a deadline the shared machine's scheduling noise rarely exceeds),
# OUT (folder for the binary and reports, default a new temporary one).
set -euo pipefail
cd "$(dirname "$0")/../.."
scenario=${1:-simulations/scenarios/validate-5.yaml}
scale=${SCALE:-0.15}
runs=${RUNS:-1}
tol=${TOLERANCE_PP:-2}
out=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/tlsring-validate.XXXXXX")}
mkdir -p "$out"

if [ -n "${DEADLINE:-}" ]; then
	sed -E "s/^([[:space:]]*deadlines:).*/\1 [$DEADLINE]/" "$scenario" >"$out/scenario.yaml"
	if ! grep -q "deadlines: \[$DEADLINE\]" "$out/scenario.yaml"; then
		echo "compare.sh: $scenario has no 'deadlines:' line to set DEADLINE in" >&2
		exit 2
	fi
	scenario=$out/scenario.yaml
fi
go build -o "$out/tlsring" ./cmd/tlsring
echo "== simulator: tlsring sim $scenario -scale $scale"
"$out/tlsring" sim "$scenario" -scale "$scale" -out "$out/sim" -json "$out/sim.json"

status=0
for i in $(seq "$runs"); do
	echo
	echo "== real cluster, run $i of $runs: tlsring real-cluster -scenario $scenario -scale $scale"
	"$out/tlsring" real-cluster -scenario "$scenario" -scale "$scale" -json "$out/real-$i.json" \
		-compare "$out/sim.json" -tolerance-pp "$tol" ${LATENCY_FACTOR:+-latency-factor "$LATENCY_FACTOR"} || status=1
done
echo
echo "reports in $out (sim.json, sim/, real-N.json)"
exit $status
