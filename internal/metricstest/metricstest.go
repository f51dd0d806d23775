// Package metricstest reads Prometheus collectors in tests without
// prometheus/testutil (which would pull a new module into go.sum). The
// tlsglue and memcached-face tests share it.
package metricstest

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Value returns the sum over c's series of each counter's or gauge's value
// and each histogram's sample count.
func Value(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	var sum float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			panic(err)
		}
		switch {
		case d.Counter != nil:
			sum += d.Counter.GetValue()
		case d.Gauge != nil:
			sum += d.Gauge.GetValue()
		case d.Histogram != nil:
			sum += float64(d.Histogram.GetSampleCount())
		}
	}
	return sum
}

// SeriesCount returns how many series c collects whose descriptor names
// one of names (all series when names is empty).
func SeriesCount(c prometheus.Collector, names ...string) int {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for m := range ch {
		desc := m.Desc().String()
		if len(names) == 0 {
			n++
			continue
		}
		for _, name := range names {
			if strings.Contains(desc, `fqName: "`+name+`"`) {
				n++
			}
		}
	}
	return n
}
