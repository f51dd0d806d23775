// Prometheus metrics of the gossip source, tlsring_membership_gossip_*
// (the damping's own are tlsring_membership_*; suspicions are counted
// there, from the ErrSuspect reports to Liveness). Like the peer's, every
// series carries a const label member="<data address>", so several members
// in one process can share a registry.

package gossip

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	members     *prometheus.GaugeVec   // by state: alive, suspect, dead
	joins       prometheus.Counter     // members that appeared
	leaves      *prometheus.CounterVec // members that went, by reason: left, dead
	refutations prometheus.Counter     // suspect -> alive
	refused     prometheus.Counter     // gossip connections refused
	dropped     *prometheus.CounterVec // packets dropped, by reason
}

func newMetrics(member string) *metrics {
	cl := prometheus.Labels{"member": member}
	return &metrics{
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tlsring_membership_gossip_members", ConstLabels: cl,
			Help: "Members this one knows of by gossip, by state: alive, suspect (probes failed, not yet declared dead) and dead (declared dead, not yet reaped).",
		}, []string{"state"}),
		joins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_membership_gossip_joins_total", ConstLabels: cl,
			Help: "Members that appeared by gossip.",
		}),
		leaves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlsring_membership_gossip_leaves_total", ConstLabels: cl,
			Help: "Members that went, by reason: left (said goodbye) or dead (declared dead by gossip).",
		}, []string{"reason"}),
		refutations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_membership_gossip_refutations_total", ConstLabels: cl,
			Help: "Suspect members seen alive again.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlsring_membership_gossip_refused_total", ConstLabels: cl,
			Help: "Gossip connections refused: no certificate of the cluster CA, or one Authorize refuses.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlsring_membership_gossip_packets_dropped_total", ConstLabels: cl,
			Help: "Gossip packets dropped, by reason (send_queue_full, unreachable, send_failed, receive_queue_full, bad_stream_packet); gossip tolerates loss.",
		}, []string{"reason"}),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.members, m.joins, m.leaves, m.refutations, m.refused, m.dropped}
}
