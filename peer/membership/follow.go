// The shell around the damping: runs a Source, feeds its lists to a
// Damper with the real clock, applies the ring it decides to a Target (a
// *peer.Peer), tells a Liveness which members are gone during their grace
// period, and logs and counts every step.

package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Target is what Follow applies membership to; *peer.Peer satisfies it.
type Target interface {
	SetMembers(members []string)
}

// Config configures Follow.
type Config struct {
	Self    string   // this member's address, as in the source's lists
	Members []string // the ring's members now, as the Target has them
	// Source names the source in logs and metrics: static, file, dns,
	// gossip. "" = the source's SourceName method's answer, if it has one.
	Source string
	// Grace is how long a member gone from the source stays in the ring
	// before its ranges move. 0 = DefaultGrace; negative = no grace
	// (removed at once).
	Grace time.Duration
	// Liveness, if not nil, is told that a member gone from the source
	// is down during its grace period (reads go to its replica at once)
	// and up again if it comes back within it.
	Liveness Liveness
	Logger   *slog.Logger // nil = slog.Default()
	Metrics  *Metrics     // nil = not counted
}

// ErrGone is the reason given to Liveness.MemberDown for a member gone
// from its source.
var ErrGone = errors.New("membership: gone from the membership source; leaves the ring when its grace period ends unless it comes back")

// Follow runs src and applies the ring it implies to t, with damping, until
// ctx ends (it returns ctx.Err()) or src stops with an error (returned).
// It calls t.SetMembers from its own goroutine only. A source with a
// UseMetrics(*Metrics) method (File, DNS) is given cfg.Metrics first, to
// count its errors.
func Follow(ctx context.Context, src Source, t Target, cfg Config) error {
	grace := cfg.Grace
	switch {
	case grace == 0:
		grace = DefaultGrace
	case grace < 0:
		grace = 0
	}
	if n, ok := src.(interface{ SourceName() string }); ok && cfg.Source == "" {
		cfg.Source = n.SourceName()
	}
	if m, ok := src.(interface{ UseMetrics(*Metrics) }); ok && cfg.Metrics != nil {
		m.UseMetrics(cfg.Metrics)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("membership", cfg.Source)
	d := NewDamper(cfg.Self, cfg.Members, grace)
	cfg.Metrics.change(Change{}, d)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lists := make(chan []string, 1) // the latest list; update never blocks
	srcDone := make(chan error, 1)
	go func() {
		srcDone <- src.Run(ctx, func(members []string) {
			members = slices.Clone(members)
			for {
				select {
				case lists <- members:
					return
				default:
				}
				select { // drop a list not taken yet: only the latest counts
				case <-lists:
				default:
				}
			}
		})
	}()

	apply := func(c Change) {
		cfg.Metrics.change(c, d)
		if c.Empty() {
			return
		}
		for _, m := range c.Gone {
			log.Warn("member gone from the source; reads go to its replica, its ranges move if it stays gone", "remote", m, "grace", grace)
			if cfg.Liveness != nil {
				cfg.Liveness.MemberDown(m, ErrGone)
			}
		}
		for _, m := range c.Back {
			log.Info("member back in the source within its grace period; nothing moves", "remote", m)
			if cfg.Liveness != nil {
				cfg.Liveness.MemberUp(m)
			}
		}
		if c.Members != nil {
			log.Info("membership: applying a new ring", "joined", c.Joined, "left", c.Left, "members", len(c.Members))
			t.SetMembers(c.Members)
		}
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var expire <-chan time.Time
		if next, ok := d.NextDeadline(); ok {
			timer.Reset(time.Until(next))
			expire = timer.C
		}
		select {
		case <-ctx.Done():
			<-srcDone
			return ctx.Err()
		case err := <-srcDone:
			if err == nil || errors.Is(err, context.Canceled) {
				err = errors.New("stopped")
			}
			log.Error("membership source stopped; the ring stays as it is", "err", err)
			return fmt.Errorf("membership: %s source: %w", cfg.Source, err)
		case members := <-lists:
			cfg.Metrics.SourceUpdate(cfg.Source)
			c, err := d.Observe(time.Now(), members)
			if err != nil {
				reason := "refused"
				if errors.Is(err, ErrSelfMissing) {
					reason = "self_missing"
				} else if errors.Is(err, ErrEmpty) {
					reason = "empty"
				}
				cfg.Metrics.SourceError(cfg.Source, reason)
				log.Error("keeping the current members", "err", err, "source_members", members)
			}
			apply(c)
		case <-expire:
			apply(d.Advance(time.Now()))
		}
		timer.Stop()
	}
}
