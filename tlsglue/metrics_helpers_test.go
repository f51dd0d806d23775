// metrics_helpers_test.go: reading collectors in tests (internal/metricstest).

package tlsglue

import "github.com/tlsring/tlsring/internal/metricstest"

// value returns a counter's, gauge's or histogram's (sample count) value.
var value = metricstest.Value

// seriesCount returns how many series c collects whose descriptor names one
// of names (all series when names is empty).
var seriesCount = metricstest.SeriesCount
