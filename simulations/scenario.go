// scenario.go: the scenario a run plays, as the YAML file spells it (see
// README.md in this folder for every field), with its defaults.

package simulations

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Scenario is one simulation: a fleet, its network, its clients, the
// strategies to compare and the faults to inject.
type Scenario struct {
	Name           string      `yaml:"name"`
	Description    string      `yaml:"description"`
	Seed           uint64      `yaml:"seed"`
	Duration       Duration    `yaml:"duration"`
	SampleInterval Duration    `yaml:"sample_interval"`
	Members        int         `yaml:"members"`
	Racks          int         `yaml:"racks"`
	Cores          int         `yaml:"cores"`
	Network        Network     `yaml:"network"`
	Costs          Costs       `yaml:"costs"`
	Workload       Workload    `yaml:"workload"`
	Balancer       Balancer    `yaml:"balancer"`
	Strategies     []string    `yaml:"strategies"`
	TLSRing        TLSRingConf `yaml:"tlsring"`
	Stateless      Stateless   `yaml:"stateless"`
	Faults         []Fault     `yaml:"faults"`
}

// Network is the model of the links between members and to clients.
type Network struct {
	Latency   Dist    `yaml:"latency"`    // one way, member to member in one rack
	CrossRack Dist    `yaml:"cross_rack"` // one way, between racks; unset = Latency
	Loss      float64 `yaml:"loss"`       // probability a member-to-member message is lost
	ClientRTT Dist    `yaml:"client_rtt"` // client to member round trip
}

// Costs are the CPU a member spends, per handshake and per store request.
// Unset handshake costs take the project's measured figures.
type Costs struct {
	TLS13ECDSA   *HandshakeCost `yaml:"tls13_ecdsa"`
	TLS13RSA     *HandshakeCost `yaml:"tls13_rsa"`
	TLS12ECDSA   *HandshakeCost `yaml:"tls12_ecdsa"`
	TLS12RSA     *HandshakeCost `yaml:"tls12_rsa"`
	LookupLocal  Duration       `yaml:"lookup_local"`  // a lookup served from the member's own store
	LookupCall   Duration       `yaml:"lookup_call"`   // the caller's side of a request to another member
	LookupServe  Duration       `yaml:"lookup_serve"`  // the served side of a request from another member
	TransferItem Duration       `yaml:"transfer_item"` // one entry moved by a state transfer or rebalance, each side
}

// HandshakeCost is the server CPU of one handshake.
type HandshakeCost struct {
	Full      Duration `yaml:"full"`      // no resumption
	Resumed   Duration `yaml:"resumed"`   // resumed from a stored session (no sharing, sticky, tlsring)
	Stateless Duration `yaml:"stateless"` // resumed from a ticket sealed under a shared key
}

// Workload is the client population.
type Workload struct {
	ArrivalRate        float64   `yaml:"arrival_rate"` // new clients per second (Poisson)
	DailyCurve         []float64 `yaml:"daily_curve"`  // rate multiplier per hour of the virtual day
	ReturnProbability  float64   `yaml:"return_probability"`
	ReturnAfter        Dist      `yaml:"return_after"`
	TLS13Share         *float64  `yaml:"tls13_share"` // unset = 1
	RSAShare           float64   `yaml:"rsa_share"`
	Parallel           int       `yaml:"parallel"`       // connections a parallel visit opens
	ParallelShare      float64   `yaml:"parallel_share"` // share of visits that open Parallel connections
	TicketReuse        *bool     `yaml:"ticket_reuse"`   // parallel connections present the same ticket
	ConnectionDuration Dist      `yaml:"connection_duration"`
	SessionLifetime    Duration  `yaml:"session_lifetime"`
	SessionBytes       int       `yaml:"session_bytes"` // sealed session state stored per session
}

// Balancer is the load balancer in front of the members.
type Balancer struct {
	Policy      string   `yaml:"policy"`       // random | round_robin | least_connections | sticky | ip_hash
	DetectAfter Duration `yaml:"detect_after"` // how long a dead member keeps getting connections
	RetryAfter  Duration `yaml:"retry_after"`  // what a connection to a dead member costs the client
}

// TLSRingConf configures the tlsring strategy (one per deadline).
type TLSRingConf struct {
	Deadlines     []Duration `yaml:"deadlines"`
	Replicas      int        `yaml:"replicas"`
	HedgeAfter    Duration   `yaml:"hedge_after"`
	DownAfter     int        `yaml:"down_after"`
	ProbeInterval Duration   `yaml:"probe_interval"`
	MaxBytes      ByteSize   `yaml:"max_bytes"`
	SingleUse     bool       `yaml:"single_use"`
}

// Stateless configures shared ticket keys.
type Stateless struct {
	Rotation Duration `yaml:"rotation"`  // a new key every Rotation
	KeysKept int      `yaml:"keys_kept"` // tickets under the last KeysKept keys decrypt
}

// Fault is one event injected at a time.
type Fault struct {
	At      Duration `yaml:"at"`
	Kind    string   `yaml:"kind"` // crash | rack | rolling_restart | scale_out | partition | slow
	Member  *int     `yaml:"member"`
	Members []int    `yaml:"members"`
	Rack    *int     `yaml:"rack"`
	For     Duration `yaml:"for"`      // crash, rack, partition, slow: how long (0 = to the end)
	Every   Duration `yaml:"every"`    // rolling_restart: one member every Every
	DownFor Duration `yaml:"down_for"` // rolling_restart: each member is down this long
	To      int      `yaml:"to"`       // scale_out: the new member count
	Factor  float64  `yaml:"factor"`   // slow: CPU and latency multiplier
}

// Dist is a distribution of durations.
type Dist struct {
	Kind   string   `yaml:"dist"` // fixed | exponential | lognormal | uniform
	Value  Duration `yaml:"value"`
	Mean   Duration `yaml:"mean"`
	Median Duration `yaml:"median"`
	P99    Duration `yaml:"p99"`
	Min    Duration `yaml:"min"`
	Max    Duration `yaml:"max"`
}

// Duration is a time.Duration written as Go writes it: "250us", "3ms", "2h".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a Go duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration such as 3ms, got a %s", kindName(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("want a duration such as 3ms or 2h, got %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the Go form.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// ByteSize is a size in bytes, written as a number or with a unit: 64MiB, 1GiB, 500KB.
type ByteSize int64

// UnmarshalYAML parses a size.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a size such as 64MiB, got a %s", kindName(n))
	}
	v, err := parseBytes(n.Value)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	mult := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			mult, num = u.mult, strings.TrimSpace(strings.TrimSuffix(num, u.suffix))
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 || v > (1<<50)/mult {
		return 0, fmt.Errorf("want a size such as 64MiB or 1048576, got %q", s)
	}
	return v * mult, nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "scalar"
}
