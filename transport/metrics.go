// Optional Prometheus metrics for the QUIC transport. A nil *Metrics
// records nothing, so the hot path pays only a nil check when metrics are
// off; counters are resolved once, not per call.

package transport

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what QUIC transports do. Create one with NewMetrics, pass
// it in QUICConfig.Metrics and register it (it is a prometheus.Collector);
// several transports in one process (a test cluster, the demo) share one
// Metrics, or each has its own with a distinct const label.
type Metrics struct {
	collectors []prometheus.Collector

	calls     [lastOp + 1][numResults]prometheus.Counter
	latency   [lastOp + 1]prometheus.Observer
	servedC   [lastOp + 1][StatusError + 1]prometheus.Counter
	dials     [2]prometheus.Counter // ok, error
	acceptedC prometheus.Counter
	refusedC  prometheus.Counter
	lateC     prometheus.Counter
	slowC     prometheus.Counter
	malformC  prometheus.Counter
	panicC    prometheus.Counter
	queuedG   prometheus.Gauge
}

// lastOp is the highest operation of the wire version, the extent of the
// metrics' per-operation arrays.
const lastOp = OpSync

// Call results, the "result" label of tlsring_transport_calls_total.
const (
	resOK = iota
	resNotFound
	resBadRequest
	resError
	resTimeout
	resUnreachable
	resClosed
	resInvalid
	numResults
)

var resultNames = [numResults]string{"ok", "not_found", "bad_request", "error", "timeout", "unreachable", "closed", "invalid"}

// NewMetrics creates the transport's metrics, unregistered, each series
// carrying constLabels (peer.New passes {member="host:port"}; nil = none):
//
//	tlsring_transport_calls_total{op,result}     calls made, by outcome
//	tlsring_transport_call_seconds{op}           call latency, successful or not
//	tlsring_transport_served_total{op,status}    requests served for other members
//	tlsring_transport_dials_total{result}        connections dialled (ok, error)
//	tlsring_transport_accepted_total             connections accepted
//	tlsring_transport_refused_total              handshakes refused (bad certificate)
//	tlsring_transport_late_replies_total         responses that arrived after their call gave up
//	tlsring_transport_slow_readers_total         connections cut off for not reading their answers
//	tlsring_transport_malformed_total            connections closed for a malformed frame
//	tlsring_transport_handler_panics_total       requests whose handler panicked
//	tlsring_transport_queued_bytes               answer bytes waiting for callers to read
func NewMetrics(constLabels prometheus.Labels) *Metrics {
	cl := constLabels
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tlsring_transport_calls_total", ConstLabels: cl, Help: "Calls to other members, by operation and result.",
	}, []string{"op", "result"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tlsring_transport_call_seconds", ConstLabels: cl, Help: "Latency of calls to other members.",
		Buckets: prometheus.ExponentialBuckets(25e-6, 2, 16),
	}, []string{"op"})
	served := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tlsring_transport_served_total", ConstLabels: cl, Help: "Requests served for other members, by operation and status.",
	}, []string{"op", "status"})
	dials := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tlsring_transport_dials_total", ConstLabels: cl, Help: "Connections dialled to other members, by result.",
	}, []string{"result"})
	m := &Metrics{
		acceptedC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_transport_accepted_total", ConstLabels: cl, Help: "Connections accepted from other members.",
		}),
		refusedC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_transport_refused_total", ConstLabels: cl, Help: "Handshakes refused for a missing or foreign certificate.",
		}),
		lateC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_transport_late_replies_total", ConstLabels: cl, Help: "Responses discarded because their call had given up.",
		}),
		slowC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_transport_slow_readers_total", ConstLabels: cl, Help: "Connections cut off because the calling member did not read its answers within the stall timeout.",
		}),
		malformC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_transport_malformed_total", ConstLabels: cl, Help: "Connections closed because a member sent a frame that broke the framing.",
		}),
		panicC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_transport_handler_panics_total", ConstLabels: cl, Help: "Requests from other members whose handler panicked.",
		}),
		queuedG: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tlsring_transport_queued_bytes", ConstLabels: cl, Help: "Answer bytes waiting for calling members to read them (flow control).",
		}),
	}
	m.collectors = []prometheus.Collector{calls, latency, served, dials, m.acceptedC, m.refusedC, m.lateC, m.slowC, m.malformC, m.panicC, m.queuedG}
	for op := OpGet; op <= lastOp; op++ {
		for r := range numResults {
			m.calls[op][r] = calls.WithLabelValues(op.String(), resultNames[r])
		}
		m.latency[op] = latency.WithLabelValues(op.String())
		for s := StatusOK; s <= StatusError; s++ {
			m.servedC[op][s] = served.WithLabelValues(op.String(), s.String())
		}
	}
	m.dials[0] = dials.WithLabelValues("ok")
	m.dials[1] = dials.WithLabelValues("error")
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors {
		c.Collect(ch)
	}
}

func (m *Metrics) call(op Op, resp *Response, err error, start time.Time) {
	if m == nil || op < OpGet || op > lastOp {
		return
	}
	r := resOK
	switch {
	case err == nil:
		if resp.Status <= StatusError {
			r = int(resp.Status) // resOK..resError mirror the statuses
		} else {
			r = resError
		}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		r = resTimeout
	case errors.Is(err, ErrUnreachable):
		r = resUnreachable
	case errors.Is(err, ErrClosed):
		r = resClosed
	default:
		r = resInvalid
	}
	m.calls[op][r].Inc()
	m.latency[op].Observe(time.Since(start).Seconds())
}

func (m *Metrics) served(op Op, s Status) {
	if m == nil || op < OpGet || op > lastOp || s > StatusError {
		return
	}
	m.servedC[op][s].Inc()
}

func (m *Metrics) dial(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.dials[1].Inc()
	} else {
		m.dials[0].Inc()
	}
}

func (m *Metrics) accepted() {
	if m != nil {
		m.acceptedC.Inc()
	}
}

func (m *Metrics) refused() {
	if m != nil {
		m.refusedC.Inc()
	}
}

func (m *Metrics) late() {
	if m != nil {
		m.lateC.Inc()
	}
}

func (m *Metrics) slowReader() {
	if m != nil {
		m.slowC.Inc()
	}
}

func (m *Metrics) malformed() {
	if m != nil {
		m.malformC.Inc()
	}
}

func (m *Metrics) panicked() {
	if m != nil {
		m.panicC.Inc()
	}
}

func (m *Metrics) queuedBytes(n int) {
	if m != nil {
		m.queuedG.Add(float64(n))
	}
}
