// metrics.go: Prometheus collectors of a Keyring.

package ticketkeys

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a ticket is refused, the values of the "reason" label of
// tlsring_ticketkeys_refused_total.
const (
	RefusedTooOld     = "too_old"     // its epoch's key was erased: older than the retention
	RefusedUnknownKey = "unknown_key" // its key is not held here (a key made by a member cut off from the ring, or not fetched yet)
	RefusedCorrupt    = "corrupt"     // it does not authenticate under its key, or is malformed
)

// maxAgeLabel caps the "age" label of opened_total: older keys count as
// "maxAgeLabel+".
const maxAgeLabel = 48

// Metrics holds a Keyring's collectors. It implements prometheus.Collector.
type Metrics struct {
	epoch   prometheus.Gauge
	held    *prometheus.GaugeVec
	sealed  *prometheus.CounterVec
	opened  *prometheus.CounterVec
	refused *prometheus.CounterVec
}

// NewMetrics returns unregistered collectors, each series carrying
// constLabels (nil = none), e.g. prometheus.Labels{"member": "host:port"}.
func NewMetrics(constLabels prometheus.Labels) *Metrics {
	cl := constLabels
	return &Metrics{
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tlsring_ticketkeys_epoch", ConstLabels: cl, Help: "Current ticket key epoch (Unix time / period).",
		}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tlsring_ticketkeys_keys_held", ConstLabels: cl, Help: "Ticket keys held in memory, by origin (ring: agreed through the ring; local: made here while the ring was unreachable).",
		}, []string{"origin"}),
		sealed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlsring_ticketkeys_sealed_total", ConstLabels: cl, Help: "Tickets sealed, by origin of the key.",
		}, []string{"origin"}),
		opened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlsring_ticketkeys_opened_total", ConstLabels: cl, Help: "Tickets opened, by age of their key in epochs (-1: the next epoch's key, from a member whose clock runs ahead).",
		}, []string{"age"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlsring_ticketkeys_refused_total", ConstLabels: cl, Help: "Tickets refused, by reason (too_old, unknown_key, corrupt).",
		}, []string{"reason"}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.epoch.Describe(ch)
	m.held.Describe(ch)
	m.sealed.Describe(ch)
	m.opened.Describe(ch)
	m.refused.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.epoch.Collect(ch)
	m.held.Collect(ch)
	m.sealed.Collect(ch)
	m.opened.Collect(ch)
	m.refused.Collect(ch)
}

func ageLabel(age int64) string {
	if age > maxAgeLabel {
		return strconv.Itoa(maxAgeLabel) + "+"
	}
	return strconv.FormatInt(age, 10)
}
