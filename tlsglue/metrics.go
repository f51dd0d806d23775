// metrics.go: Prometheus collectors for resumption, lookups and writes.

package tlsglue

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Lookup results, the values of the "result" label of
// tlsring_tlsglue_lookups_total.
const (
	ResultHit       = "hit"       // the session was found, opened and bound to this connection
	ResultMiss      = "miss"      // the store does not have it (or it outlived Options.Lifetime)
	ResultTimeout   = "timeout"   // the lookup's deadline or the handshake's context expired
	ResultError     = "error"     // the store returned another error
	ResultMismatch  = "mismatch"  // issued under another SNI, ALPN protocol or Label
	ResultMalformed = "malformed" // the identity is not a handle of a version this package knows: no lookup was made
	ResultCorrupt   = "corrupt"   // the stored value did not decrypt, or did not parse as a session
)

// Write results, the values of the "result" label of
// tlsring_tlsglue_writes_total.
const (
	WriteOK      = "ok"      // stored
	WriteError   = "error"   // the store returned an error
	WriteTimeout = "timeout" // Options.WriteTimeout expired, or the Glue was closed mid-write
	WriteExpired = "expired" // a re-issued TLS 1.2 session had less than a second left to live
	WriteReused  = "reused"  // a TLS 1.2 resumption re-issued the handle it resumed: nothing to write
)

var lookupResults = [...]string{ResultHit, ResultMiss, ResultTimeout, ResultError, ResultMismatch, ResultMalformed, ResultCorrupt}

type lookupResult int

const (
	lrHit lookupResult = iota
	lrMiss
	lrTimeout
	lrError
	lrMismatch
	lrMalformed
	lrCorrupt
)

var writeResults = [...]string{WriteOK, WriteError, WriteTimeout, WriteExpired, WriteReused}

type writeResult int

const (
	wrOK writeResult = iota
	wrError
	wrTimeout
	wrExpired
	wrReused
)

// Metrics holds tlsglue's collectors. It implements prometheus.Collector;
// register it with the registry of your choice. One Metrics may be shared by
// several Glues (for instance the configs of one server); give servers that
// share a registry their own Metrics with distinguishing constant labels.
//
// Exposed series (all prefixed tlsring_tlsglue_):
//
//	handshakes_total{mode="full"|"resumed"}      server handshakes, counted when crypto/tls calls VerifyConnection
//	lookups_total{result=...}                    UnwrapSession outcomes, see the Result constants
//	lookup_duration_seconds                      latency of store lookups (Get or Take)
//	lookups_shared_total                         lookups answered by a concurrent lookup's Get of the same handle
//	writes_total{result=...}                     store writes, see the Write constants
//	write_drops_total                            sessions not written because the queue was full or the Glue closed
//	write_queue_pending                          writes queued or in progress
type Metrics struct {
	handshakes *prometheus.CounterVec
	full       prometheus.Counter
	resumed    prometheus.Counter

	lookupVec *prometheus.CounterVec
	lookups   [len(lookupResults)]prometheus.Counter
	latency   prometheus.Histogram
	shared    prometheus.Counter

	writeVec *prometheus.CounterVec
	writes   [len(writeResults)]prometheus.Counter
	drops    prometheus.Counter
	pending  prometheus.Gauge
}

// NewMetrics returns unregistered collectors carrying constLabels (nil for
// none), for example prometheus.Labels{"server": "a"}.
func NewMetrics(constLabels prometheus.Labels) *Metrics {
	const ns, sub = "tlsring", "tlsglue"
	m := &Metrics{
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "handshakes_total",
			Help:        "Server TLS handshakes by mode (full or resumed).",
			ConstLabels: constLabels,
		}, []string{"mode"}),
		lookupVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "lookups_total",
			Help:        "Session lookups (UnwrapSession calls with a ticket) by result.",
			ConstLabels: constLabels,
		}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "lookup_duration_seconds",
			Help:        "Latency of session store lookups.",
			ConstLabels: constLabels,
			Buckets:     prometheus.ExponentialBuckets(25e-6, 2, 12), // 25 µs .. 51 ms
		}),
		shared: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "lookups_shared_total",
			Help:        "Session lookups answered by the store Get of a concurrent lookup of the same handle.",
			ConstLabels: constLabels,
		}),
		writeVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "writes_total",
			Help:        "Session store writes by result.",
			ConstLabels: constLabels,
		}, []string{"result"}),
		drops: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "write_drops_total",
			Help:        "Sessions not written because the write queue was full or closed.",
			ConstLabels: constLabels,
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "write_queue_pending",
			Help:        "Session writes queued or in progress.",
			ConstLabels: constLabels,
		}),
	}
	m.full = m.handshakes.WithLabelValues("full")
	m.resumed = m.handshakes.WithLabelValues("resumed")
	for i, r := range lookupResults {
		m.lookups[i] = m.lookupVec.WithLabelValues(r)
	}
	for i, r := range writeResults {
		m.writes[i] = m.writeVec.WithLabelValues(r)
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.handshakes.Describe(ch)
	m.lookupVec.Describe(ch)
	m.latency.Describe(ch)
	m.shared.Describe(ch)
	m.writeVec.Describe(ch)
	m.drops.Describe(ch)
	m.pending.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.handshakes.Collect(ch)
	m.lookupVec.Collect(ch)
	m.latency.Collect(ch)
	m.shared.Collect(ch)
	m.writeVec.Collect(ch)
	m.drops.Collect(ch)
	m.pending.Collect(ch)
}

func (m *Metrics) lookup(r lookupResult) { m.lookups[r].Inc() }

func (m *Metrics) observe(d time.Duration) { m.latency.Observe(d.Seconds()) }

func (m *Metrics) write(r writeResult) { m.writes[r].Inc() }
