// realcluster_load.go: the client load of `tlsring real-cluster`: new
// clients arrive as a Poisson process, each visit is one real TLS handshake
// (demo_clients.go's handshakeOnce) through a random balancer to a member's
// TLS server, and after each visit a client returns with a probability,
// after a time drawn from a distribution, offering the session it got last.
// Every visit is recorded; the measurement windows are cut afterwards.

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// rcDist is a distribution of durations: fixed (a), exponential (mean a),
// uniform (a to b) or lognormal (median a, 99th percentile b).
type rcDist struct {
	kind string
	a, b time.Duration
}

// parseRCDist parses "fixed:5s", "exponential:5s", "uniform:2s:8s" or
// "lognormal:5s:20s" (median, 99th percentile).
func parseRCDist(s string) (rcDist, error) {
	parts := strings.Split(s, ":")
	d := rcDist{kind: parts[0]}
	want := map[string]int{"fixed": 1, "exponential": 1, "uniform": 2, "lognormal": 2}[d.kind]
	if want == 0 || len(parts) != want+1 {
		return d, errors.New("want fixed:D, exponential:MEAN, uniform:MIN:MAX or lognormal:MEDIAN:P99")
	}
	var err error
	if d.a, err = time.ParseDuration(parts[1]); err != nil || d.a < 0 {
		return d, fmt.Errorf("%q: want a duration of 0 or more", parts[1])
	}
	if want == 2 {
		if d.b, err = time.ParseDuration(parts[2]); err != nil || d.b < d.a {
			return d, fmt.Errorf("%q: want a duration of at least %v", parts[2], d.a)
		}
	}
	if d.kind != "fixed" && d.kind != "uniform" && d.a == 0 {
		return d, fmt.Errorf("%s needs a positive duration", d.kind)
	}
	return d, nil
}

func (d rcDist) String() string {
	if d.kind == "uniform" || d.kind == "lognormal" {
		return fmt.Sprintf("%s:%v:%v", d.kind, d.a, d.b)
	}
	return fmt.Sprintf("%s:%v", d.kind, d.a)
}

// sample draws one duration.
func (d rcDist) sample(rng *rand.Rand) time.Duration {
	switch d.kind {
	case "exponential":
		return time.Duration(rng.ExpFloat64() * float64(d.a))
	case "uniform":
		return d.a + time.Duration(rng.Float64()*float64(d.b-d.a))
	case "lognormal":
		// P99 = median * exp(2.326 sigma).
		sigma := math.Log(float64(d.b)/float64(d.a)) / 2.3263478740408408
		return time.Duration(float64(d.a) * math.Exp(sigma*rng.NormFloat64()))
	}
	return d.a
}

// rcVisit is one visit of a client, as it saw it.
type rcVisit struct {
	at        time.Duration // when it started, from the start of the load
	returning bool          // not the client's first visit
	offered   bool          // the client offered a session
	resumed   bool
	failed    bool
	retries   int           // connections refused by a dead member first
	d         time.Duration // from the first connection attempt to the end of the handshake
}

// rcBalancer picks a member at random among those it believes alive. A
// killed member keeps being picked for detectAfter; a client refused by it
// tries another member.
type rcBalancer struct {
	mu          sync.Mutex
	addrs       []string
	deadAt      map[int]time.Time
	detectAfter time.Duration
}

func (b *rcBalancer) killed(i int, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deadAt[i] = at
}

// pick returns a member other than those in skip.
func (b *rcBalancer) pick(rng *rand.Rand, skip []int) (int, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	var cands []int
	for i := range b.addrs {
		if t, dead := b.deadAt[i]; (dead && now.Sub(t) >= b.detectAfter) || slices.Contains(skip, i) {
			continue
		}
		cands = append(cands, i)
	}
	if len(cands) == 0 {
		return 0, false
	}
	return cands[rng.IntN(len(cands))], true
}

// rcLoad is the workload's parameters.
type rcLoad struct {
	arrivalRate float64 // new clients per second
	returnProb  float64
	returnAfter rcDist
	tls13Share  float64
	duration    time.Duration
	seed        uint64
	maxInFlight int
	pool        *x509.CertPool
}

// rcLoadRun is a running load.
type rcLoadRun struct {
	l       *rcLoad
	bal     *rcBalancer
	start   time.Time
	sem     chan struct{}
	mu      sync.Mutex
	visits  []rcVisit
	done    atomic.Int64
	offered atomic.Int64
	resumed atomic.Int64
	failed  atomic.Int64
	wg      sync.WaitGroup
}

// run plays the load until its duration has passed and every visit begun
// has ended; visits that would begin later are not made.
func (r *rcLoadRun) run(ctx context.Context) {
	rng := rand.New(rand.NewPCG(r.l.seed, 0))
	r.sem = make(chan struct{}, r.l.maxInFlight)
	t := time.Duration(0)
	for id := uint64(1); ; id++ {
		t += time.Duration(rng.ExpFloat64() / r.l.arrivalRate * float64(time.Second))
		if t >= r.l.duration || !sleepUntil(ctx, r.start.Add(t)) {
			break
		}
		version := uint16(tls.VersionTLS12)
		if rng.Float64() < r.l.tls13Share {
			version = tls.VersionTLS13
		}
		r.wg.Go(func() { r.client(ctx, id, version) })
	}
	r.wg.Wait()
}

// sleepUntil waits for t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// client is one client's life: a first visit, then returns.
func (r *rcLoadRun) client(ctx context.Context, id uint64, version uint16) {
	rng := rand.New(rand.NewPCG(r.l.seed, id))
	c := &demoClient{cache: newOfferRecorder()}
	c.conf = &tls.Config{RootCAs: r.l.pool, ServerName: "localhost", MinVersion: version, MaxVersion: version, ClientSessionCache: c.cache}
	for n := 0; ; n++ {
		r.visit(ctx, rng, c, n > 0)
		if rng.Float64() >= r.l.returnProb {
			return
		}
		next := time.Now().Add(r.l.returnAfter.sample(rng))
		if next.Sub(r.start) >= r.l.duration || !sleepUntil(ctx, next) {
			return
		}
	}
}

// visit makes one handshake, failing over from members that refuse it.
func (r *rcLoadRun) visit(ctx context.Context, rng *rand.Rand, c *demoClient, returning bool) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-r.sem }()
	begin := time.Now()
	v := rcVisit{at: begin.Sub(r.start), returning: returning}
	var skip []int
	for {
		i, ok := r.bal.pick(rng, skip)
		if !ok {
			v.failed = true
			break
		}
		try := time.Now()
		res, err := handshakeOnce(ctx, c, r.bal.addrs[i])
		if errors.Is(err, syscall.ECONNREFUSED) {
			v.retries++
			skip = append(skip, i)
			continue
		}
		v.failed = err != nil
		v.offered, v.resumed, v.d = res.offered, res.resumed, try.Sub(begin)+res.d
		break
	}
	if ctx.Err() != nil {
		return // cut short: not a measurement
	}
	switch {
	case v.failed:
		r.failed.Add(1)
	default:
		r.done.Add(1)
		if returning {
			r.offered.Add(1)
			if v.resumed {
				r.resumed.Add(1)
			}
		}
	}
	r.mu.Lock()
	r.visits = append(r.visits, v)
	r.mu.Unlock()
}

// quantileUs returns the q-quantile of sorted ds (nearest rank), in
// microseconds; 0 for none.
func quantileUs(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return float64(ds[max(i, 0)]) / float64(time.Microsecond)
}

// rcSummary is the figures of the visits that began in a window. The
// fields the simulator also reports have its names and meanings (package
// simulations, Summary), so that the two compare field by field.
type rcSummary struct {
	Strategy       string  `json:"strategy"`   // "tlsring"
	Handshakes     int64   `json:"handshakes"` // completed
	Offered        int64   `json:"offered"`    // of which the client offered a session
	Resumed        int64   `json:"resumed"`
	ResumptionRate float64 `json:"resumption_rate"` // resumed / offered
	ReturningRate  float64 `json:"returning_rate"`  // resumed / completed visits of returning clients
	// Handshake latency as the client measured it: TCP connect and TLS
	// handshake, from the first connection attempt (a refused one
	// included) to the end of the handshake.
	HandshakeP50Us    float64 `json:"handshake_p50_us"`
	HandshakeP90Us    float64 `json:"handshake_p90_us"`
	HandshakeP99Us    float64 `json:"handshake_p99_us"`
	CPUPerHandshakeUs float64 `json:"cpu_per_handshake_us,omitempty"` // every member process's CPU / handshakes
	// The TLS servers' session lookups by result, and the members' CPU,
	// from scrapes of their metrics at the start, a second before the kill
	// and at the end; left out when a scrape timed out.
	LookupHits     *int64 `json:"lookup_hits,omitempty"`
	LookupMisses   *int64 `json:"lookup_misses,omitempty"`
	LookupTimeouts *int64 `json:"lookup_timeouts,omitempty"`
	LookupErrors   *int64 `json:"lookup_errors,omitempty"`
	// The servers' lookup latency, estimated from their histogram
	// (tlsring_tlsglue_lookup_duration_seconds, buckets doubling from
	// 25us to 51ms), as Prometheus's histogram_quantile does.
	LookupP50Us  float64 `json:"lookup_p50_us,omitempty"`
	LookupP99Us  float64 `json:"lookup_p99_us,omitempty"`
	ConnFailures int64   `json:"conn_failures"` // connections refused by a dead member, then made to another

	// Only the real cluster's:
	FromS        float64 `json:"from_s"`
	ToS          float64 `json:"to_s"`
	Returning    int64   `json:"returning"` // completed visits of returning clients
	Failed       int64   `json:"failed"`    // visits that found no handshake
	FullP50Us    float64 `json:"full_p50_us"`
	FullP99Us    float64 `json:"full_p99_us"`
	ResumedP50Us float64 `json:"resumed_p50_us"`
	ResumedP99Us float64 `json:"resumed_p99_us"`
	OtherLookups int64   `json:"other_lookups,omitempty"` // mismatch, malformed, corrupt
	LoadAverage  float64 `json:"load_average,omitempty"`  // series: the machine's, at the end of the step
}

// summary summarises the visits that began in [from, to).
func (r *rcLoadRun) summary(from, to time.Duration) rcSummary {
	w := rcSummary{Strategy: "tlsring", FromS: from.Seconds(), ToS: to.Seconds()}
	var all, full, resumed []time.Duration
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.visits {
		if v.at < from || v.at >= to {
			continue
		}
		w.ConnFailures += int64(v.retries)
		if v.failed {
			w.Failed++
			continue
		}
		w.Handshakes++
		all = append(all, v.d)
		if v.resumed {
			w.Resumed++
			resumed = append(resumed, v.d)
		} else {
			full = append(full, v.d)
		}
		if v.offered {
			w.Offered++
		}
		if v.returning {
			w.Returning++
		}
	}
	if w.Offered > 0 {
		w.ResumptionRate = float64(w.Resumed) / float64(w.Offered)
	}
	if w.Returning > 0 {
		// Only returning clients offer a session.
		w.ReturningRate = float64(w.Resumed) / float64(w.Returning)
	}
	for _, ds := range [][]time.Duration{all, full, resumed} {
		slices.Sort(ds)
	}
	w.HandshakeP50Us, w.HandshakeP90Us, w.HandshakeP99Us = quantileUs(all, .5), quantileUs(all, .9), quantileUs(all, .99)
	w.FullP50Us, w.FullP99Us = quantileUs(full, .5), quantileUs(full, .99)
	w.ResumedP50Us, w.ResumedP99Us = quantileUs(resumed, .5), quantileUs(resumed, .99)
	return w
}
