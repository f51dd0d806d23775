// metrics_helpers_test.go: reading collectors in tests (internal/metricstest).

package memcache

import "github.com/tlsring/tlsring/internal/metricstest"

// value returns the sum of a collector's counter and gauge values.
var value = metricstest.Value
