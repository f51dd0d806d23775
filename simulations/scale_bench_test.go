// scale_bench_test.go: the full-scale figure: 1000 members and about 10
// million handshakes (scenarios/scale-1000.yaml), wall and CPU time and
// peak memory. SIM_SCALE scales the arrival rate (default 1, the full
// run; the README gives the command and what it measured).

package simulations

import (
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func BenchmarkScale1000(b *testing.B) {
	scale := 1.0
	if s := os.Getenv("SIM_SCALE"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			b.Fatalf("SIM_SCALE=%q: %v", s, err)
		}
		scale = v
	}
	sc, err := LoadScenario("scenarios/scale-1000.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var peak uint64
		var ms runtime.MemStats
		var ru0, ru1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		start := time.Now()
		res, err := Run(sc, Options{Scale: scale, Progress: func(float64, int64) {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}})
		if err != nil {
			b.Fatal(err)
		}
		wall := time.Since(start)
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
		hs := res.Strategies[0].Total.Handshakes
		b.ReportMetric(float64(hs), "handshakes")
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(cpu.Seconds(), "cpu-s")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(ru1.Maxrss)/1024, "maxrss-MiB")
		b.ReportMetric(float64(res.Events), "events")
	}
}
