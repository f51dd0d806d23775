// metrics.go: what a strategy counts, per sample interval and in total,
// and the log-bucketed histograms its percentiles come from.

package simulations

import "math/bits"

// histSub is the number of buckets per power of two (6% resolution).
const histSub = 16

// hist is a histogram of durations in nanoseconds, in log buckets.
type hist struct {
	counts [64 * histSub]uint32
	n      uint64
}

func bucketOf(v int64) int {
	if v < histSub {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 5 // v >> e is in [16, 32)
	return (e+1)*histSub + int(uint64(v)>>e) - histSub
}

// bucketMid returns a value inside bucket i, its middle.
func bucketMid(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	e := i/histSub - 1
	m := int64(i%histSub + histSub)
	return m<<e + (int64(1)<<e)/2
}

func (h *hist) add(v int64) {
	h.counts[bucketOf(v)]++
	h.n++
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 when empty).
func (h *hist) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			return bucketMid(i)
		}
	}
	return bucketMid(len(h.counts) - 1)
}

func (h *hist) reset() { *h = hist{} }

// counts are a strategy's counters over some time.
type counts struct {
	Handshakes   int64 // completed handshakes
	Offered      int64 // handshakes where the client offered a ticket it held unexpired
	Resumed      int64
	Returns      int64 // first connection of a returning client's visit
	Returning    int64 // ... with an unexpired ticket
	ReturnResume int64 // ... that resumed
	Hits         int64 // tlsring lookups by result
	Misses       int64
	Timeouts     int64
	Errors       int64
	ConnFailures int64 // connections the balancer sent to a dead member
	CPU          int64 // nanoseconds of member CPU, every member
	Full         int64
}

func (c *counts) add(o *counts) {
	c.Handshakes += o.Handshakes
	c.Offered += o.Offered
	c.Resumed += o.Resumed
	c.Returns += o.Returns
	c.Returning += o.Returning
	c.ReturnResume += o.ReturnResume
	c.Hits += o.Hits
	c.Misses += o.Misses
	c.Timeouts += o.Timeouts
	c.Errors += o.Errors
	c.ConnFailures += o.ConnFailures
	c.CPU += o.CPU
	c.Full += o.Full
}

// sample is one row of a strategy's time series.
type sample struct {
	T       int64 // end of the interval, virtual ns
	C       counts
	HSP50   int64
	HSP99   int64
	LkP50   int64
	LkP99   int64
	MemMean int64 // store bytes per live member
	MemMax  int64
}

// recorder accumulates a strategy's metrics.
type recorder struct {
	cur, total   counts
	hs, lk       hist // this interval
	hsAll, lkAll hist
	series       []sample
	hsSeries     []hist // per sample, for splitting a run at a fault
	lkSeries     []hist
	memPeak      int64
	memLast      int64 // mean store bytes per live member at the last sample
}

func (r *recorder) handshake(lat int64, offered, resumed, returning bool) {
	r.cur.Handshakes++
	if offered {
		r.cur.Offered++
	}
	if resumed {
		r.cur.Resumed++
	} else {
		r.cur.Full++
	}
	if returning {
		r.cur.Returning++
		if resumed {
			r.cur.ReturnResume++
		}
	}
	r.hs.add(lat)
}

func (r *recorder) lookup(lat int64) { r.lk.add(lat) }

// flush closes an interval ending at t with the members' memory figures.
func (r *recorder) flush(t int64, memMean, memMax int64) {
	r.series = append(r.series, sample{T: t, C: r.cur, HSP50: r.hs.quantile(.5), HSP99: r.hs.quantile(.99), LkP50: r.lk.quantile(.5), LkP99: r.lk.quantile(.99), MemMean: memMean, MemMax: memMax})
	r.total.add(&r.cur)
	r.cur = counts{}
	r.hsSeries = append(r.hsSeries, r.hs)
	r.lkSeries = append(r.lkSeries, r.lk)
	r.hsAll.merge(&r.hs)
	r.lkAll.merge(&r.lk)
	r.hs.reset()
	r.lk.reset()
	r.memPeak = max(r.memPeak, memMax)
	r.memLast = memMean
}
