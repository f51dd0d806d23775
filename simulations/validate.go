// validate.go: a scenario's defaults, and the checks that turn a value
// that makes no sense into an error naming its field.

package simulations

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tlsring/tlsring/peer/store"
)

// Measured server CPU per handshake (docs/benchmarks.json, `tlsring bench`,
// 8 handshakes in flight, medians): "full" is a server with tickets off,
// "resumed" the ideal shared in-memory store, "stateless" Go's own tickets.
var defaultCosts = map[string]HandshakeCost{
	"tls13_ecdsa": {Full: us(575), Resumed: us(556), Stateless: us(518)},
	"tls13_rsa":   {Full: us(1530), Resumed: us(556), Stateless: us(505)},
	"tls12_ecdsa": {Full: us(463), Resumed: us(224), Stateless: us(183)},
	"tls12_rsa":   {Full: us(1275), Resumed: us(207), Stateless: us(194)},
}

func us(n int) Duration { return Duration(time.Duration(n) * time.Microsecond) }

// Strategy names.
const (
	StratNone      = "none"
	StratTLSRing   = "tlsring"
	StratStateless = "stateless"
	StratSticky    = "sticky"
)

// Balancer policies.
var policies = []string{"random", "round_robin", "least_connections", "sticky", "ip_hash"}

// Fault kinds.
var faultKinds = []string{"crash", "rack", "rolling_restart", "scale_out", "partition", "slow"}

func (s *Scenario) setDefaults() {
	def := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	if s.Name == "" {
		s.Name = "scenario"
	}
	if s.Seed == 0 {
		s.Seed = 1
	}
	def(&s.Duration, 10*time.Minute)
	def(&s.SampleInterval, s.Duration.D()/60)
	if s.Members == 0 {
		s.Members = 5
	}
	if s.Racks == 0 {
		s.Racks = 1
	}
	if s.Cores == 0 {
		s.Cores = 2
	}
	n := &s.Network
	if n.Latency.Kind == "" {
		n.Latency = Dist{Kind: "lognormal", Median: us(100), P99: us(500)}
	}
	if n.CrossRack.Kind == "" {
		n.CrossRack = n.Latency
	}
	if n.ClientRTT.Kind == "" {
		n.ClientRTT = Dist{Kind: "lognormal", Median: Duration(20 * time.Millisecond), P99: Duration(100 * time.Millisecond)}
	}
	c := &s.Costs
	for name, p := range map[string]**HandshakeCost{"tls13_ecdsa": &c.TLS13ECDSA, "tls13_rsa": &c.TLS13RSA, "tls12_ecdsa": &c.TLS12ECDSA, "tls12_rsa": &c.TLS12RSA} {
		d := defaultCosts[name]
		if *p == nil {
			*p = &HandshakeCost{}
		}
		def(&(*p).Full, d.Full.D())
		def(&(*p).Resumed, d.Resumed.D())
		def(&(*p).Stateless, d.Stateless.D())
	}
	def(&c.LookupLocal, 2*time.Microsecond) // BenchmarkGet, local copy: 2.4 µs with the benchmark's context
	// A request to another member, both ends: 100 µs. Calibrated on
	// `tlsring bench` (docs/benchmarks.json, TLS 1.3 ECDSA, 8 in flight):
	// the cluster CPU per resumed handshake through tlsring exceeds the
	// ideal in-process store's by 165 µs, for the 5/3 requests to other
	// members such a handshake makes in a 3-member ring (the lookup is
	// remote one time in three; the new ticket's two copies are remote 4/3
	// times). At 1 in flight the same difference is 455 µs; the transport's
	// own figure at 64 in flight, 23 µs, is the batched floor.
	def(&c.LookupCall, 50*time.Microsecond)
	def(&c.LookupServe, 50*time.Microsecond)
	def(&c.TransferItem, 2*time.Microsecond) // one entry packed or unpacked in a batch
	w := &s.Workload
	if w.ArrivalRate == 0 {
		w.ArrivalRate = 100
	}
	if w.ReturnAfter.Kind == "" {
		w.ReturnAfter = Dist{Kind: "exponential", Mean: Duration(2 * time.Minute)}
	}
	if w.TLS13Share == nil {
		one := 1.0
		w.TLS13Share = &one
	}
	if w.Parallel == 0 {
		w.Parallel = 1
	}
	if w.TicketReuse == nil {
		t := true
		w.TicketReuse = &t
	}
	if w.ConnectionDuration.Kind == "" {
		w.ConnectionDuration = Dist{Kind: "exponential", Mean: Duration(10 * time.Second)}
	}
	def(&w.SessionLifetime, 24*time.Hour) // tlsglue's DefaultLifetime
	if w.SessionBytes == 0 {
		w.SessionBytes = 100 // a sealed TLS 1.3 session, as peer/store's DefaultMaxBytes assumes
	}
	b := &s.Balancer
	if b.Policy == "" {
		b.Policy = "random"
	}
	def(&b.DetectAfter, 3*time.Second)
	def(&b.RetryAfter, 200*time.Millisecond)
	if len(s.Strategies) == 0 {
		s.Strategies = []string{StratNone, StratTLSRing, StratStateless, StratSticky}
	}
	t := &s.TLSRing
	if len(t.Deadlines) == 0 {
		t.Deadlines = []Duration{Duration(3 * time.Millisecond)} // tlsglue's DefaultDeadline
	}
	if t.Replicas == 0 {
		t.Replicas = 2
	}
	def(&t.HedgeAfter, time.Millisecond)
	if t.DownAfter == 0 {
		t.DownAfter = 3
	}
	def(&t.ProbeInterval, 200*time.Millisecond)
	if t.MaxBytes == 0 {
		t.MaxBytes = store.DefaultMaxBytes
	}
	st := &s.Stateless
	def(&st.Rotation, time.Hour)
	if st.KeysKept == 0 {
		st.KeysKept = 25 // a day of hourly keys: tickets live as long as sessions
	}
	for i := range s.Faults {
		f := &s.Faults[i]
		if f.Kind == "slow" && f.Factor == 0 {
			f.Factor = 10
		}
	}
}

func ferr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (s *Scenario) validate() error {
	if s.Duration <= 0 {
		return ferr("duration", "must be positive")
	}
	if s.Duration.D() > 400*24*time.Hour {
		return ferr("duration", "more than 400 days of virtual time is not a scenario")
	}
	if s.SampleInterval <= 0 || s.Duration.D()/s.SampleInterval.D() > 2000 {
		return ferr("sample_interval", "must be positive and give at most 2000 samples over the duration")
	}
	if s.Members < 1 || s.Members > 10000 {
		return ferr("members", "must be between 1 and 10000, got %d", s.Members)
	}
	if s.Racks < 1 || s.Racks > s.Members {
		return ferr("racks", "must be between 1 and members (%d), got %d", s.Members, s.Racks)
	}
	if s.Cores < 1 || s.Cores > 1024 {
		return ferr("cores", "must be between 1 and 1024, got %d", s.Cores)
	}
	for _, d := range []struct {
		name string
		d    Dist
	}{{"network.latency", s.Network.Latency}, {"network.cross_rack", s.Network.CrossRack}, {"network.client_rtt", s.Network.ClientRTT},
		{"workload.return_after", s.Workload.ReturnAfter}, {"workload.connection_duration", s.Workload.ConnectionDuration}} {
		if err := d.d.check(d.name); err != nil {
			return err
		}
	}
	if err := prob("network.loss", s.Network.Loss); err != nil {
		return err
	}
	if s.Network.Loss >= 1 {
		return ferr("network.loss", "must be below 1")
	}
	c := s.Costs
	// Fields in file order, so that the first bad one is reported.
	type dur struct {
		field string
		v     Duration
	}
	var costs []dur
	for _, hc := range []struct {
		name string
		c    *HandshakeCost
	}{{"tls13_ecdsa", c.TLS13ECDSA}, {"tls13_rsa", c.TLS13RSA}, {"tls12_ecdsa", c.TLS12ECDSA}, {"tls12_rsa", c.TLS12RSA}} {
		costs = append(costs, dur{"costs." + hc.name + ".full", hc.c.Full}, dur{"costs." + hc.name + ".resumed", hc.c.Resumed}, dur{"costs." + hc.name + ".stateless", hc.c.Stateless})
	}
	costs = append(costs, dur{"costs.lookup_local", c.LookupLocal}, dur{"costs.lookup_call", c.LookupCall}, dur{"costs.lookup_serve", c.LookupServe}, dur{"costs.transfer_item", c.TransferItem})
	for _, d := range costs {
		if d.v < 0 || d.v.D() > time.Second {
			return ferr(d.field, "must be between 0 and 1s, got %v", d.v.D())
		}
	}
	w := s.Workload
	if w.ArrivalRate <= 0 || math.IsNaN(w.ArrivalRate) || w.ArrivalRate > 1e7 {
		return ferr("workload.arrival_rate", "must be a positive number of new clients per second (at most 1e7), got %v", w.ArrivalRate)
	}
	if len(w.DailyCurve) != 0 && len(w.DailyCurve) != 24 {
		return ferr("workload.daily_curve", "must hold 24 multipliers, one per hour, got %d", len(w.DailyCurve))
	}
	for i, m := range w.DailyCurve {
		if m < 0 || m > 100 || math.IsNaN(m) {
			return ferr(fmt.Sprintf("workload.daily_curve[%d]", i), "must be between 0 and 100, got %v", m)
		}
	}
	for _, p := range []struct {
		field string
		v     float64
	}{{"workload.return_probability", w.ReturnProbability}, {"workload.tls13_share", *w.TLS13Share}, {"workload.rsa_share", w.RSAShare}, {"workload.parallel_share", w.ParallelShare}} {
		if err := prob(p.field, p.v); err != nil {
			return err
		}
	}
	if w.Parallel < 1 || w.Parallel > 64 {
		return ferr("workload.parallel", "must be between 1 and 64, got %d", w.Parallel)
	}
	if w.SessionLifetime <= 0 || w.SessionLifetime.D() > 7*24*time.Hour {
		return ferr("workload.session_lifetime", "must be positive and at most 7 days (RFC 8446), got %v", w.SessionLifetime.D())
	}
	if w.SessionBytes < 1 || w.SessionBytes > 64<<10 {
		return ferr("workload.session_bytes", "must be between 1 and 65536, got %d", w.SessionBytes)
	}
	if !slices.Contains(policies, s.Balancer.Policy) {
		return ferr("balancer.policy", "must be one of %v, got %q", policies, s.Balancer.Policy)
	}
	if s.Balancer.DetectAfter < 0 || s.Balancer.RetryAfter < 0 {
		return ferr("balancer", "detect_after and retry_after must not be negative")
	}
	seen := map[string]bool{}
	for i, st := range s.Strategies {
		f := fmt.Sprintf("strategies[%d]", i)
		if !slices.Contains([]string{StratNone, StratTLSRing, StratStateless, StratSticky}, st) {
			return ferr(f, "must be one of none, tlsring, stateless, sticky; got %q", st)
		}
		if seen[st] {
			return ferr(f, "%q listed twice", st)
		}
		seen[st] = true
	}
	t := s.TLSRing
	for i, d := range t.Deadlines {
		if d <= 0 || d.D() > 10*time.Second {
			return ferr(fmt.Sprintf("tlsring.deadlines[%d]", i), "must be positive and at most 10s, got %v", d.D())
		}
	}
	if len(t.Deadlines) > 16 {
		return ferr("tlsring.deadlines", "at most 16 deadlines in one run")
	}
	if t.Replicas < 1 || t.Replicas > 5 {
		return ferr("tlsring.replicas", "must be between 1 and 5, got %d", t.Replicas)
	}
	if t.HedgeAfter <= 0 {
		return ferr("tlsring.hedge_after", "must be positive")
	}
	if t.DownAfter < 1 || t.DownAfter > 1000 {
		return ferr("tlsring.down_after", "must be between 1 and 1000, got %d", t.DownAfter)
	}
	if t.ProbeInterval.D() < time.Millisecond {
		return ferr("tlsring.probe_interval", "must be at least 1ms, got %v", t.ProbeInterval.D())
	}
	if t.MaxBytes < 16*(1<<10) {
		return ferr("tlsring.max_bytes", "must be at least 16KiB, got %d", t.MaxBytes)
	}
	if s.Stateless.Rotation <= 0 {
		return ferr("stateless.rotation", "must be positive")
	}
	if s.Stateless.KeysKept < 1 || s.Stateless.KeysKept > 1000 {
		return ferr("stateless.keys_kept", "must be between 1 and 1000, got %d", s.Stateless.KeysKept)
	}
	return s.validateFaults()
}

func (s *Scenario) validateFaults() error {
	members := s.Members
	for i, f := range s.Faults {
		p := fmt.Sprintf("faults[%d]", i)
		if !slices.Contains(faultKinds, f.Kind) {
			return ferr(p+".kind", "must be one of %v, got %q", faultKinds, f.Kind)
		}
		if f.At < 0 || f.At >= s.Duration {
			return ferr(p+".at", "must be within the duration (0 to %v), got %v", s.Duration.D(), f.At.D())
		}
		if f.For < 0 {
			return ferr(p+".for", "must not be negative")
		}
		member := func() error {
			if f.Member == nil {
				return ferr(p+".member", "a %s fault needs a member (0 to %d)", f.Kind, members-1)
			}
			if *f.Member < 0 || *f.Member >= members {
				return ferr(p+".member", "must be between 0 and %d, got %d", members-1, *f.Member)
			}
			return nil
		}
		switch f.Kind {
		case "crash":
			if err := member(); err != nil {
				return err
			}
		case "slow":
			if err := member(); err != nil {
				return err
			}
			if f.Factor < 1 || f.Factor > 1e6 {
				return ferr(p+".factor", "must be between 1 and 1e6, got %v", f.Factor)
			}
		case "rack":
			if f.Rack == nil || *f.Rack < 0 || *f.Rack >= s.Racks {
				return ferr(p+".rack", "a rack fault needs a rack between 0 and %d", s.Racks-1)
			}
		case "rolling_restart":
			if f.Every <= 0 {
				return ferr(p+".every", "must be positive")
			}
			if f.DownFor <= 0 || f.DownFor > f.Every {
				return ferr(p+".down_for", "must be positive and at most every (%v)", f.Every.D())
			}
		case "scale_out":
			if f.To <= members || f.To > 10000 {
				return ferr(p+".to", "must be more than the %d members before it and at most 10000, got %d", members, f.To)
			}
			members = f.To
		case "partition":
			if len(f.Members) == 0 || len(f.Members) >= members {
				return ferr(p+".members", "must list the members cut off from the rest (at least one, not all)")
			}
			for j, m := range f.Members {
				if m < 0 || m >= members {
					return ferr(fmt.Sprintf("%s.members[%d]", p, j), "must be between 0 and %d, got %d", members-1, m)
				}
			}
		}
		if i > 0 && f.At < s.Faults[i-1].At {
			return ferr(p+".at", "faults must be listed in time order")
		}
	}
	return nil
}

func prob(field string, p float64) error {
	if p < 0 || p > 1 || math.IsNaN(p) {
		return ferr(field, "must be between 0 and 1, got %v", p)
	}
	return nil
}

func (d Dist) check(field string) error {
	pos := func(name string, v Duration) error {
		if v <= 0 {
			return ferr(field+"."+name, "must be positive for a %s distribution", d.Kind)
		}
		if v.D() > 365*24*time.Hour {
			return ferr(field+"."+name, "must be at most a year")
		}
		return nil
	}
	switch d.Kind {
	case "fixed":
		if d.Value < 0 {
			return ferr(field+".value", "must not be negative")
		}
	case "exponential":
		return pos("mean", d.Mean)
	case "lognormal":
		if err := pos("median", d.Median); err != nil {
			return err
		}
		if err := pos("p99", d.P99); err != nil {
			return err
		}
		if d.P99 < d.Median {
			return ferr(field+".p99", "must be at least the median (%v), got %v", d.Median.D(), d.P99.D())
		}
	case "uniform":
		if d.Min < 0 || d.Max < d.Min || d.Max.D() > 365*24*time.Hour {
			return ferr(field+".max", "uniform needs 0 <= min <= max <= 1 year")
		}
	default:
		return ferr(field+".dist", "must be one of fixed, exponential, lognormal, uniform; got %q", d.Kind)
	}
	return nil
}
