#!/bin/sh
# bench-cpu.sh [rounds [benchtime]]: server CPU per handshake, medians and
# ratios, for SPEC.md §6 ("server CPU per resumed handshake through tlsring:
# within 1.15x of a local in-memory resume").
#
# Builds the tlsglue test binary once and runs BenchmarkHandshake (server
# thread CPU; tlsring = in-memory store, writer inline) and
# BenchmarkHandshakeRemote (server process CPU; tlsring-remote = owner and
# replica in another process over QUIC) `rounds` times (default 5), each
# round every configuration once, so that a noisy neighbour's burst hits
# all variants alike rather than five runs of one. Then prints, per
# benchmark, certificate and TLS version, the median srv-ns/op of each
# variant and its ratio to "local" (crypto/tls's own stateless tickets).
# Ratios compare variants of one benchmark only: the two benchmarks measure
# different things (one thread, versus the whole server process). Variants of
# tlsring-remote (tlsring-remote-unplaced, ...) get a table of their own:
# the median over rounds of each round's ratio to tlsring-remote, which a
# noisy neighbour disturbs less than a ratio of medians.
#
# Self-contained (POSIX sh and awk; no network). Not run by CI.
#
#	tlsglue/testdata/bench-cpu.sh            # 5 rounds of 2000x
#	tlsglue/testdata/bench-cpu.sh 3 1000x
#	BENCH_PAR=8 tlsglue/testdata/bench-cpu.sh   # remote: 8 handshakes in flight
#	BENCH_PAR=6 BENCH_BURST=1 tlsglue/testdata/bench-cpu.sh   # remote: bursts of 6 (a browser)
#	BENCH_ONLY=HandshakeRemote/ECDSA/TLS12 ...   # only the benchmarks matching this
#	BENCH_CPU_KEEP=out.txt ...                   # keep the raw benchmark lines
set -eu
rounds=${1:-5}
benchtime=${2:-2000x}
par=${BENCH_PAR:-1}
burst=${BENCH_BURST:+-tlsglue.burst}
only=${BENCH_ONLY:-'^BenchmarkHandshake(Remote)?$'}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/tlsglue.test" .
echo "cores: $(nproc)  rounds: $rounds  benchtime: $benchtime  remote parallelism: $par ${burst:+(bursts)}  benchmarks: $only"
echo "load before: $(uptime)"
i=1
while [ "$i" -le "$rounds" ]; do
	"$tmp/tlsglue.test" -test.run='^$' -test.bench="$only" \
		-test.benchtime="$benchtime" -test.count=1 -tlsglue.remotepar="$par" $burst >"$tmp/round.txt" 2>&1 || {
		cat "$tmp/round.txt"
		exit 1
	}
	grep '^Benchmark' "$tmp/round.txt" >>"$tmp/bench.txt"
	echo "round $i done: $(uptime)"
	i=$((i + 1))
done
echo "load after: $(uptime)"
if [ -n "${BENCH_CPU_KEEP:-}" ]; then
	cp "$tmp/bench.txt" "$BENCH_CPU_KEEP"
fi

awk '
function median(key,    n, i, j, a, t) {
	n = cnt[key]
	if (n == 0) return -1
	for (i = 1; i <= n; i++) a[i] = val[key, i]
	for (i = 2; i <= n; i++) { # insertion sort (mawk has no asort)
		t = a[i]
		for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]
		a[j+1] = t
	}
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
# rratio: median over rounds of the ratio of variant m to tlsring-remote
# in the same round (the i-th value of each is from round i).
function rratio(conf, m, metric,    k, b, n, i, r, t, j) {
	k = conf SUBSEP m SUBSEP metric
	b = conf SUBSEP "tlsring-remote" SUBSEP metric
	n = cnt[k] < cnt[b] ? cnt[k] : cnt[b]
	if (n == 0) return "-"
	for (i = 1; i <= n; i++) r[i] = val[b, i] > 0 ? val[k, i] / val[b, i] : 0
	for (i = 2; i <= n; i++) {
		t = r[i]
		for (j = i - 1; j >= 1 && r[j] > t; j--) r[j+1] = r[j]
		r[j+1] = t
	}
	return sprintf("%.3fx", n % 2 ? r[(n+1)/2] : (r[n/2] + r[n/2+1]) / 2)
}
function us(x) { return x < 0 ? "-" : sprintf("%.1f", x / 1000) }
function ratio(x, y) { return x < 0 || y <= 0 ? "-" : sprintf("%.2fx", x / y) }
/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	np = split(name, p, "/")
	if (np != 4) next
	conf = p[1] "/" p[2] "/" p[3]
	mode = p[4]
	if (!(conf in seen)) { seen[conf] = 1; order[++nconf] = conf }
	modes[mode] = 1
	for (i = 3; i < NF; i += 2) {
		k = conf SUBSEP mode SUBSEP $(i+1)
		val[k, ++cnt[k]] = $i
	}
}
END {
	u = "srv-ns/op"
	printf "median %s in us (n = runs per cell); ratios to local\n\n", u
	printf "%-36s %8s %8s %8s %8s %8s | %10s %10s %10s %10s\n", "config", "full", "local", "tlsring", "remote", "owner", "full/lcl", "ring/lcl", "remote/lcl", "owner/lcl"
	for (c = 1; c <= nconf; c++) {
		conf = order[c]
		f = median(conf SUBSEP "full" SUBSEP u)
		l = median(conf SUBSEP "local" SUBSEP u)
		r = median(conf SUBSEP "tlsring" SUBSEP u)
		rr = median(conf SUBSEP "tlsring-remote" SUBSEP u)
		ro = median(conf SUBSEP "tlsring-local-owner" SUBSEP u)
		printf "%-36s %8s %8s %8s %8s %8s | %10s %10s %10s %10s   n=%d\n", conf, us(f), us(l), us(r), us(rr), us(ro), ratio(f, l), ratio(r, l), ratio(rr, l), ratio(ro, l), cnt[conf SUBSEP "local" SUBSEP u]
	}
	printf "\nBenchmarkHandshakeRemote extras (medians): client-side wall time per\n"
	printf "handshake in us, Gets the remote members served per handshake (>1: hedged)\n"
	printf "and lookups over 3.2 ms per handshake (past the default 3 ms Deadline)\n\n"
	printf "%-36s %9s %9s %9s %9s %9s %9s\n", "config", "wall lcl", "wall rem", "wall own", "gets/op", "sets/op", "late/op"
	for (c = 1; c <= nconf; c++) {
		conf = order[c]
		if (conf !~ /^BenchmarkHandshakeRemote/) continue
		wl = median(conf SUBSEP "local" SUBSEP "wall-ns/op")
		wr = median(conf SUBSEP "tlsring-remote" SUBSEP "wall-ns/op")
		wo = median(conf SUBSEP "tlsring-local-owner" SUBSEP "wall-ns/op")
		g = median(conf SUBSEP "tlsring-remote" SUBSEP "gets/op")
		lt = median(conf SUBSEP "tlsring-remote" SUBSEP "late/op")
		st = median(conf SUBSEP "tlsring-remote" SUBSEP "sets/op")
		printf "%-36s %9s %9s %9s %9.4f %9.4f %9.4f\n", conf, us(wl), us(wr), us(wo), g, st, lt
	}
	hdr = 0
	for (c = 1; c <= nconf; c++) {
		conf = order[c]
		for (m in modes) {
			if (m !~ /^tlsring-remote-/ || cnt[conf SUBSEP m SUBSEP u] == 0) continue
			if (!hdr++) {
				printf "\nVariants of tlsring-remote: medians; ratio = median over rounds of the\n"
				printf "ratio in each round to tlsring-remote (srv: server process CPU, child: client\n"
				printf "and the two other members)\n\n"
				printf "%-36s %-24s %8s %8s %9s %9s %8s %8s\n", "config", "variant", "srv us", "srv rat", "child us", "child rat", "gets/op", "sets/op"
			}
			printf "%-36s %-24s %8s %8s %9s %9s %8.4f %8.4f\n", conf, m, us(median(conf SUBSEP m SUBSEP u)), rratio(conf, m, u), us(median(conf SUBSEP m SUBSEP "child-ns/op")), rratio(conf, m, "child-ns/op"), median(conf SUBSEP m SUBSEP "gets/op"), median(conf SUBSEP m SUBSEP "sets/op")
			printf "%-36s %-24s %8s %8s %9s %9s %8.4f %8.4f\n", "", "(tlsring-remote)", us(median(conf SUBSEP "tlsring-remote" SUBSEP u)), "1", us(median(conf SUBSEP "tlsring-remote" SUBSEP "child-ns/op")), "1", median(conf SUBSEP "tlsring-remote" SUBSEP "gets/op"), median(conf SUBSEP "tlsring-remote" SUBSEP "sets/op")
		}
	}
}' "$tmp/bench.txt"
