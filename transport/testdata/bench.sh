#!/bin/sh
# Compares the tlsring QUIC transport with a bare TCP floor and memcached,
# in one run, on loopback: lookup p50/p99 at concurrency 1 and throughput at
# concurrency 64, medians of several runs, and the ratios the spec sets
# targets for. Installs Debian's memcached if it is missing, starts it on
# 127.0.0.1 with a random free port, and stops it at the end.
#
# Usage: transport/testdata/bench.sh [benchcmp flags, e.g. -runs 5 -duration 3s]
set -eu
cd "$(dirname "$0")/../.."   # repository root

if ! command -v memcached >/dev/null 2>&1; then
	echo "installing memcached..." >&2
	apt-get update -qq >/dev/null && apt-get install -y -qq memcached >/dev/null
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
memcached -u "$(id -un)" -l 127.0.0.1 -p "$port" -U 0 -m 256 &
mc=$!
trap 'kill $mc 2>/dev/null; wait $mc 2>/dev/null || true' EXIT INT TERM

i=0
until printf 'version\r\n' | timeout 1 python3 -c '
import socket,sys
s=socket.create_connection(("127.0.0.1",'"$port"'),timeout=1); s.sendall(b"version\r\n"); sys.exit(0 if s.recv(64).startswith(b"VERSION") else 1)' 2>/dev/null; do
	i=$((i+1)); [ $i -lt 100 ] || { echo "memcached did not start" >&2; exit 1; }
	sleep 0.05
done
echo "memcached $(memcached -V | cut -d' ' -f2) on 127.0.0.1:$port (default 4 threads)"

go build -o /tmp/tlsring-benchcmp ./transport/benchcmp
/tmp/tlsring-benchcmp -memcached "127.0.0.1:$port" -memcached-pid "$mc" "$@"
