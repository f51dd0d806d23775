// Prometheus metrics of one member. Every series carries a const label
// member="<Self>", so several members in one process can share a registry.

package peer

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tlsring/tlsring/transport"
)

type metrics struct {
	p                *Peer
	ops              *prometheus.HistogramVec // public operations by op and result
	calls            *prometheus.CounterVec   // calls to other members by peer and result
	callLatency      *prometheus.HistogramVec // their latency by peer
	served           *prometheus.CounterVec   // requests served by op and status
	handoffSent      prometheus.Counter
	handoffReceived  prometheus.Counter
	rebalances       prometheus.Counter
	rebalanceRetries prometheus.Counter
	hints            *prometheus.CounterVec // delayed writes by result
	transfers        prometheus.Counter
	transferSent     prometheus.Counter
	// transport is the default QUIC transport's metrics (member label
	// included), nil when Config.Listen or Config.QUIC.Metrics is set.
	transport *transport.Metrics

	storeBytes, storeMaxBytes, storeEntries, evictions, expirations, peerUp, members,
	tombstones, hintsPending, hintBytes, ready, transferring *prometheus.Desc
}

func newMetrics(p *Peer) *metrics {
	cl := prometheus.Labels{"member": p.self}
	buckets := []float64{50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 50e-3, 0.25, 1}
	return &metrics{
		p: p,
		ops: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tlsring_peer_operation_duration_seconds", ConstLabels: cl, Buckets: buckets,
			Help: "Latency of Get, Set, Take and Delete on this member, by operation and result (hit, miss, ok, error, timeout).",
		}, []string{"op", "result"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlsring_peer_calls_total", ConstLabels: cl,
			Help: "Requests sent to other members, by remote member and result (ok, not_found, bad_request, error, timeout, canceled, unreachable).",
		}, []string{"remote", "result"}),
		// Latency by remote member only: a result label would multiply the buckets
		// by seven for every member of a large ring.
		callLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tlsring_peer_call_duration_seconds", ConstLabels: cl, Buckets: buckets,
			Help: "Latency of requests sent to other members that got an answer, by remote member.",
		}, []string{"remote"}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlsring_peer_served_requests_total", ConstLabels: cl,
			Help: "Requests served for other members (and this one), by operation and status.",
		}, []string{"op", "status"}),
		handoffSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_peer_handoff_sent_entries_total", ConstLabels: cl,
			Help: "Entries sent to new owners when membership changed or this member left.",
		}),
		handoffReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_peer_handoff_received_entries_total", ConstLabels: cl,
			Help: "Entries received from other members' hand-offs.",
		}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_peer_rebalances_total", ConstLabels: cl,
			Help: "Rebalances completed after membership changes.",
		}),
		rebalanceRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_peer_rebalance_retries_total", ConstLabels: cl,
			Help: "Rebalances that failed part-way and were retried.",
		}),
		hints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlsring_peer_delayed_writes_total", ConstLabels: cl,
			Help: "Writes kept for members that could not be reached, by result: queued, delivered, dropped (over HintBytes), expired (TTL passed before delivery).",
		}, []string{"result"}),
		transfers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_peer_state_transfers_total", ConstLabels: cl,
			Help: "State transfers this member completed (at start, or when added back to the ring).",
		}),
		transferSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_peer_state_transfer_sent_entries_total", ConstLabels: cl,
			Help: "Entries sent to members pulling their state after a start or rejoin.",
		}),
		tombstones:    prometheus.NewDesc("tlsring_store_tombstones", "Deleted or taken keys remembered so that late copies cannot bring them back.", nil, cl),
		hintsPending:  prometheus.NewDesc("tlsring_peer_delayed_writes", "Writes waiting for members that could not be reached.", nil, cl),
		hintBytes:     prometheus.NewDesc("tlsring_peer_delayed_write_bytes", "Bytes charged for writes waiting for members that could not be reached; bounded by HintBytes.", nil, cl),
		ready:         prometheus.NewDesc("tlsring_peer_ready", "1 if the member is ready (state transfer done, reaches the ring), else 0.", nil, cl),
		transferring:  prometheus.NewDesc("tlsring_peer_state_transfer_running", "1 while this member's state transfer waits for members, else 0.", nil, cl),
		storeBytes:    prometheus.NewDesc("tlsring_store_bytes", "Bytes charged in the local store (keys, values, per-entry overhead).", nil, cl),
		storeMaxBytes: prometheus.NewDesc("tlsring_store_max_bytes", "Bound on tlsring_store_bytes.", nil, cl),
		storeEntries:  prometheus.NewDesc("tlsring_store_entries", "Entries in the local store.", nil, cl),
		evictions:     prometheus.NewDesc("tlsring_store_evictions_total", "Entries evicted to stay within the byte bound.", nil, cl),
		expirations:   prometheus.NewDesc("tlsring_store_expirations_total", "Entries dropped at their TTL.", nil, cl),
		peerUp:        prometheus.NewDesc("tlsring_peer_up", "1 if the member is answering, 0 if marked down, by remote member.", []string{"remote"}, cl),
		members:       prometheus.NewDesc("tlsring_peer_members", "Members in this member's current ring, itself included.", nil, cl),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	if m.transport != nil {
		m.transport.Describe(ch)
	}
	m.ops.Describe(ch)
	m.calls.Describe(ch)
	m.callLatency.Describe(ch)
	m.served.Describe(ch)
	m.handoffSent.Describe(ch)
	m.handoffReceived.Describe(ch)
	m.rebalances.Describe(ch)
	m.rebalanceRetries.Describe(ch)
	m.hints.Describe(ch)
	m.transfers.Describe(ch)
	m.transferSent.Describe(ch)
	for _, d := range []*prometheus.Desc{m.storeBytes, m.storeMaxBytes, m.storeEntries, m.evictions, m.expirations, m.peerUp, m.members,
		m.tombstones, m.hintsPending, m.hintBytes, m.ready, m.transferring} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	if m.transport != nil {
		m.transport.Collect(ch)
	}
	m.ops.Collect(ch)
	m.calls.Collect(ch)
	m.callLatency.Collect(ch)
	m.served.Collect(ch)
	m.handoffSent.Collect(ch)
	m.handoffReceived.Collect(ch)
	m.rebalances.Collect(ch)
	m.rebalanceRetries.Collect(ch)
	m.hints.Collect(ch)
	m.transfers.Collect(ch)
	m.transferSent.Collect(ch)
	st := m.p.store.Stats()
	ch <- prometheus.MustNewConstMetric(m.tombstones, prometheus.GaugeValue, float64(st.Tombstones))
	hn, hb := m.p.hints.stats()
	ch <- prometheus.MustNewConstMetric(m.hintsPending, prometheus.GaugeValue, float64(hn))
	ch <- prometheus.MustNewConstMetric(m.hintBytes, prometheus.GaugeValue, float64(hb))
	rd := m.p.Readiness()
	ch <- prometheus.MustNewConstMetric(m.ready, prometheus.GaugeValue, b2f(rd.Ready))
	ch <- prometheus.MustNewConstMetric(m.transferring, prometheus.GaugeValue, b2f(rd.Transferring))
	ch <- prometheus.MustNewConstMetric(m.storeBytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(m.storeMaxBytes, prometheus.GaugeValue, float64(m.p.store.MaxBytes()))
	ch <- prometheus.MustNewConstMetric(m.storeEntries, prometheus.GaugeValue, float64(st.Entries))
	ch <- prometheus.MustNewConstMetric(m.evictions, prometheus.CounterValue, float64(st.Evictions))
	ch <- prometheus.MustNewConstMetric(m.expirations, prometheus.CounterValue, float64(st.Expirations))
	r := m.p.core.Ring()
	ch <- prometheus.MustNewConstMetric(m.members, prometheus.GaugeValue, float64(r.Len()))
	for _, peer := range r.Members() {
		if peer == m.p.self {
			continue
		}
		up := 1.0
		if m.p.health.isDown(peer) {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(m.peerUp, prometheus.GaugeValue, up, peer)
	}
}

func (m *metrics) observeOp(op string, err error, d time.Duration) {
	m.ops.WithLabelValues(op, opResult(op, err)).Observe(d.Seconds())
}

func opResult(op string, err error) string {
	switch {
	case err == nil && (op == "get" || op == "take"):
		return "hit"
	case err == nil:
		return "ok"
	case errors.Is(err, ErrNotFound):
		return "miss"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "error"
}

func (m *metrics) observeCall(peer string, resp *transport.Response, err error, d time.Duration) {
	result := "ok"
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		result = "timeout"
	case errors.Is(err, context.Canceled):
		result = "canceled"
	case errors.Is(err, transport.ErrUnreachable):
		result = "unreachable"
	case err != nil:
		result = "error"
	default:
		result = resp.Status.String()
	}
	m.calls.WithLabelValues(peer, result).Inc()
	if err == nil {
		m.callLatency.WithLabelValues(peer).Observe(d.Seconds())
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
