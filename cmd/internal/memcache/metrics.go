// metrics.go: Prometheus counters of the memcached face.

package memcache

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts the memcached face's commands and connections. It
// implements prometheus.Collector; a nil *Metrics counts nothing.
//
// Exposed series:
//
//	tlsring_memcached_commands_total{command, result}  commands answered; result is hit, miss, stored, deleted, not_found, ok, error, client_error, too_large or unsupported
//	tlsring_memcached_connections                       open connections
//	tlsring_memcached_refused_connections_total         connections refused over Server.MaxConns
type Metrics struct {
	commands *prometheus.CounterVec
	conns    prometheus.Gauge
	refusals prometheus.Counter
}

// NewMetrics returns unregistered collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlsring_memcached_commands_total",
			Help: "Commands answered by the memcached face, by command and result.",
		}, []string{"command", "result"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tlsring_memcached_connections",
			Help: "Open connections to the memcached face.",
		}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_memcached_refused_connections_total",
			Help: "Connections refused because the memcached face had MaxConns open.",
		}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.commands.Describe(ch)
	m.conns.Describe(ch)
	m.refusals.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.commands.Collect(ch)
	m.conns.Collect(ch)
	m.refusals.Collect(ch)
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

func (m *Metrics) refused() {
	if m != nil {
		m.refusals.Inc()
	}
}
