//go:build linux

// bench_modes_test.go: the three modes side by side over two real ring
// members (QUIC on loopback), a client walking A, B, A, B, ... with its
// session: CPU of the whole process per handshake (both servers, both
// members, the client) and the share of handshakes that resumed.
//
//	go test -run '^$' -bench Modes -benchtime 2000x -count 5 ./tlsglue

package tlsglue

import (
	"syscall"
	"testing"
	"time"

	"github.com/tlsring/tlsring/ticketkeys"
)

func BenchmarkModes(b *testing.B) {
	members := newMembers(b, 2)
	for _, ver := range versions {
		for _, mode := range []Mode{Stateful, Stateless, Hybrid} {
			b.Run(ver.name+"/"+mode.String(), func(b *testing.B) {
				var srv []*server
				if mode == Stateful {
					srv = clusterServers(b, members, Options{})
				} else {
					srv, _ = modeServers(b, members, &testClock{}, mode, ticketkeys.Options{Prefix: "bench-" + ver.name + mode.String() + "/"})
				}
				cfg := clientConfig(b, ver.v)
				dial(b, srv[0].addr, cfg)
				srv[0].flush(b)
				resumed := 0
				b.ResetTimer()
				proc0 := cpuTime(syscall.RUSAGE_SELF)
				start := time.Now()
				for i := range b.N {
					if dial(b, srv[(i+1)%2].addr, cfg).DidResume {
						resumed++
					}
				}
				proc := cpuTime(syscall.RUSAGE_SELF) - proc0
				wall := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(proc)/float64(b.N), "proc-ns/op")
				b.ReportMetric(100*float64(resumed)/float64(b.N), "resumed-%")
				b.ReportMetric(float64(wall)/float64(b.N), "wall-ns/op")
			})
		}
	}
}
