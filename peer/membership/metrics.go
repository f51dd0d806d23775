// Prometheus metrics of membership (tlsring_membership_*), made by
// NewMetrics(constLabels) like every package's: peer and tlsring peer give
// them member="<Self>", so several members in one process share a registry.

package membership

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what the sources and the damping do. Register it on a
// registry (it is a prometheus.Collector); a nil *Metrics counts nothing.
type Metrics struct {
	members      *prometheus.GaugeVec
	joins        prometheus.Counter
	leaves       prometheus.Counter
	damped       prometheus.Counter
	suspicions   prometheus.Counter
	sourceErrors *prometheus.CounterVec
	updates      *prometheus.CounterVec
}

// NewMetrics returns the metrics, unregistered, each series carrying
// constLabels (peer passes {member="host:port"}; nil = none).
func NewMetrics(constLabels prometheus.Labels) *Metrics {
	cl := constLabels
	return &Metrics{
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tlsring_membership_members", ConstLabels: cl,
			Help: "Ring members by state: active (in the source), leaving (gone from the source, in the ring until their grace period ends).",
		}, []string{"state"}),
		joins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_membership_joins_total", ConstLabels: cl,
			Help: "Members added to the ring.",
		}),
		leaves: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_membership_leaves_total", ConstLabels: cl,
			Help: "Members removed from the ring after their grace period.",
		}),
		damped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_membership_flaps_damped_total", ConstLabels: cl,
			Help: "Members back in the source within their grace period: ranges that did not move.",
		}),
		suspicions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_membership_suspicions_total", ConstLabels: cl,
			Help: "Members a gossip source suspected of having failed.",
		}),
		sourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlsring_membership_source_errors_total", ConstLabels: cl,
			Help: "Source reads that failed or were refused, keeping the last good membership, by source and reason.",
		}, []string{"source", "reason"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlsring_membership_source_updates_total", ConstLabels: cl,
			Help: "Member lists a source reported (changes only), by source.",
		}, []string{"source"}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.members, m.joins, m.leaves, m.damped, m.suspicions, m.sourceErrors, m.updates}
}

// SourceError counts a failed or refused read of source for reason
// (a short snake_case word: timeout, servfail, empty, ...).
func (m *Metrics) SourceError(source, reason string) {
	if m != nil {
		m.sourceErrors.WithLabelValues(source, reason).Inc()
	}
}

// SourceUpdate counts a changed member list reported by source.
func (m *Metrics) SourceUpdate(source string) {
	if m != nil {
		m.updates.WithLabelValues(source).Inc()
	}
}

// Suspicion counts a member a gossip source suspects of having failed.
func (m *Metrics) Suspicion() {
	if m != nil {
		m.suspicions.Inc()
	}
}

// change counts one step of the damping and sets the state gauges.
func (m *Metrics) change(c Change, d *Damper) {
	if m == nil {
		return
	}
	m.joins.Add(float64(len(c.Joined)))
	m.leaves.Add(float64(len(c.Left)))
	m.damped.Add(float64(len(c.Back)))
	active, leaving := d.Counts()
	m.members.WithLabelValues("active").Set(float64(active))
	m.members.WithLabelValues("leaving").Set(float64(leaving))
}
