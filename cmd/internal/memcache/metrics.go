// metrics.go: Prometheus counters of the memcached face.

package memcache

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts the memcached face's commands and connections. It
// implements prometheus.Collector; a nil *Metrics counts nothing.
//
// Exposed series:
//
//	tlsring_memcached_commands_total{command, result}        commands answered; result is hit, miss, stored, deleted, not_found, ok, error, client_error, too_large or unsupported
//	tlsring_memcached_connections                             open connections
//	tlsring_memcached_refused_connections_total{reason}       connections refused: reason max_conns (Server.MaxConns open, none idle to reclaim) or per_source (the source has Server.MaxConnsPerSource open)
//	tlsring_memcached_reclaimed_connections_total             idle connections closed to admit a new one while the face was full
//	tlsring_memcached_stalled_clients_total{during}           connections cut off after Server.StallTimeout: during write (the client did not take its replies) or data (it did not send the data block it announced)
type Metrics struct {
	commands  *prometheus.CounterVec
	conns     prometheus.Gauge
	refusals  *prometheus.CounterVec
	reclaimed prometheus.Counter
	stalled   *prometheus.CounterVec
}

// NewMetrics returns unregistered collectors, each series carrying
// constLabels (nil = none), e.g. prometheus.Labels{"member": "host:port"}.
func NewMetrics(constLabels prometheus.Labels) *Metrics {
	cl := constLabels
	m := &Metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlsring_memcached_commands_total", ConstLabels: cl,
			Help: "Commands answered by the memcached face, by command and result.",
		}, []string{"command", "result"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tlsring_memcached_connections", ConstLabels: cl,
			Help: "Open connections to the memcached face.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlsring_memcached_refused_connections_total", ConstLabels: cl,
			Help: "Connections refused by the memcached face: reason max_conns (full, no idle connection to reclaim) or per_source (the source's limit).",
		}, []string{"reason"}),
		reclaimed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_memcached_reclaimed_connections_total", ConstLabels: cl,
			Help: "Idle connections the memcached face closed to admit a new one while full.",
		}),
		stalled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlsring_memcached_stalled_clients_total", ConstLabels: cl,
			Help: "Connections cut off for stalling longer than the stall timeout: during write (replies not read) or data (data block not sent).",
		}, []string{"during"}),
	}
	// Every label value exists from the start, so rates work from zero.
	for _, r := range []string{reasonMaxConns, reasonPerSource} {
		m.refusals.WithLabelValues(r)
	}
	for _, d := range []string{stallWrite, stallData} {
		m.stalled.WithLabelValues(d)
	}
	return m
}

// Label values of the refusal and stall counters.
const (
	reasonMaxConns  = "max_conns"
	reasonPerSource = "per_source"
	stallWrite      = "write"
	stallData       = "data"
)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.commands.Describe(ch)
	m.conns.Describe(ch)
	m.refusals.Describe(ch)
	m.reclaimed.Describe(ch)
	m.stalled.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.commands.Collect(ch)
	m.conns.Collect(ch)
	m.refusals.Collect(ch)
	m.reclaimed.Collect(ch)
	m.stalled.Collect(ch)
}

func (m *Metrics) command(cmd, result string) {
	if m == nil {
		return
	}
	switch cmd { // bound the label's values: unknown names are not labels
	case "get", "gets", "set", "add", "replace", "append", "prepend", "cas", "delete",
		"version", "verbosity", "stats", "quit", "flush_all", "incr", "decr", "touch", "gat", "gats":
	default:
		cmd = "invalid"
	}
	m.commands.WithLabelValues(cmd, result).Inc()
}

func (m *Metrics) connOpened() {
	if m != nil {
		m.conns.Inc()
	}
}

func (m *Metrics) connClosed() {
	if m != nil {
		m.conns.Dec()
	}
}

func (m *Metrics) refused(reason string) {
	if m != nil {
		m.refusals.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) reclaim() {
	if m != nil {
		m.reclaimed.Inc()
	}
}

func (m *Metrics) stall(during string) {
	if m != nil {
		m.stalled.WithLabelValues(during).Inc()
	}
}
