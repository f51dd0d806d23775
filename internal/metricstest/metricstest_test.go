package metricstest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestValueAndSeriesCount(t *testing.T) {
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "a_total", Help: "a"}, []string{"k"})
	cv.WithLabelValues("x").Add(2)
	cv.WithLabelValues("y").Add(3)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h_seconds", Help: "h"})
	h.Observe(1)
	h.Observe(2)
	if v := Value(cv); v != 5 {
		t.Fatalf("counter vec value %v, want 5", v)
	}
	if v := Value(h); v != 2 {
		t.Fatalf("histogram value %v, want its 2 samples", v)
	}
	if n := SeriesCount(cv); n != 2 {
		t.Fatalf("%d series, want 2", n)
	}
	if n := SeriesCount(cv, "h_seconds"); n != 0 {
		t.Fatalf("%d series named h_seconds in a counter vec, want 0", n)
	}
}
