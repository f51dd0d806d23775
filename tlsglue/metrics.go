// metrics.go: Prometheus collectors for resumption, lookups, writes and
// early data (0-RTT).

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

// Reasons for refusing early data, the values of the "reason" label of
// tlsring_tlsglue_early_data_refused_total. Each handshake whose
// ClientHello offers early data is counted once, as accepted or as refused
// for the first reason that applies, in this order.
const (
	// EarlyRefusedNoSession: the first PSK identity resolved to no session
	// (see lookups_total for why: a replay of a single-use session that was
	// already taken is a miss, a lookup past its deadline a timeout).
	EarlyRefusedNoSession = "no_session"
	// EarlyRefusedReplayable: the session is not single-use and
	// Options.ReplayableEarlyData is off; it resumed without early data.
	EarlyRefusedReplayable = "replayable"
	// EarlyRefusedQUIC: the QUIC stack withheld permission: the session was
	// issued without it, or after tlsglue's lookup quic-go refused it (this
	// server does not allow 0-RTT, or its transport parameters are below
	// those the session was issued under) or its http3 layer did (the
	// server's SETTINGS changed).
	EarlyRefusedQUIC = "quic"
	// EarlyRefusedTLS: crypto/tls did not take the early data: it did not
	// resume this session (another PSK identity, or none), the session's
	// cipher suite differs from the one negotiated, or the handshake needed
	// a HelloRetryRequest.
	EarlyRefusedTLS = "tls"
)

var earlyRefusals = [...]string{EarlyRefusedNoSession, EarlyRefusedReplayable, EarlyRefusedQUIC, EarlyRefusedTLS}

type earlyRefusal int

const (
	erNoSession earlyRefusal = iota
	erReplayable
	erQUIC
	erTLS
	erNone // accepted
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
//	early_data_offered_total                     ClientHellos offering early data (0-RTT)
//	early_data_accepted_total                    handshakes that accepted the offered early data
//	early_data_refused_total{reason=...}         handshakes that refused it, see the EarlyRefused constants
//
// The early-data series need the per-handshake Config that Install sets up
// through GetConfigForClient (they stay at zero with
// Options.NoHandshakeContext), and they are counted when crypto/tls calls
// VerifyConnection. offered minus accepted minus refused is the handshakes
// that failed before that (an invalid PSK binder, say). With client
// certificates requested, VerifyConnection waits for the client's second
// flight, so a replayed first flight is counted as offered only.
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

	earlyOffered  prometheus.Counter
	earlyAccepted prometheus.Counter
	earlyVec      *prometheus.CounterVec
	earlyRefused  [len(earlyRefusals)]prometheus.Counter
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
		earlyOffered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "early_data_offered_total",
			Help:        "TLS 1.3 ClientHellos offering early data (0-RTT).",
			ConstLabels: constLabels,
		}),
		earlyAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "early_data_accepted_total",
			Help:        "Handshakes that accepted the early data (0-RTT) their ClientHello offered.",
			ConstLabels: constLabels,
		}),
		earlyVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "early_data_refused_total",
			Help:        "Handshakes that refused the early data (0-RTT) their ClientHello offered, by reason.",
			ConstLabels: constLabels,
		}, []string{"reason"}),
	}
	m.full = m.handshakes.WithLabelValues("full")
	m.resumed = m.handshakes.WithLabelValues("resumed")
	for i, r := range lookupResults {
		m.lookups[i] = m.lookupVec.WithLabelValues(r)
	}
	for i, r := range writeResults {
		m.writes[i] = m.writeVec.WithLabelValues(r)
	}
	for i, r := range earlyRefusals {
		m.earlyRefused[i] = m.earlyVec.WithLabelValues(r)
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
	m.earlyOffered.Describe(ch)
	m.earlyAccepted.Describe(ch)
	m.earlyVec.Describe(ch)
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
	m.earlyOffered.Collect(ch)
	m.earlyAccepted.Collect(ch)
	m.earlyVec.Collect(ch)
}

func (m *Metrics) lookup(r lookupResult) { m.lookups[r].Inc() }

func (m *Metrics) observe(d time.Duration) { m.latency.Observe(d.Seconds()) }

func (m *Metrics) write(r writeResult) { m.writes[r].Inc() }

// early counts one handshake's decision on the early data it was offered.
func (m *Metrics) early(r earlyRefusal) {
	if r == erNone {
		m.earlyAccepted.Inc()
		return
	}
	m.earlyRefused[r].Inc()
}
