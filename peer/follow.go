// Following a membership source (Config.Membership): the member runs
// membership.Follow in a goroutine of its own, which applies the source's
// lists, damped, with SetMembers, until Leave or Close.

package peer

import (
	"context"
	"errors"
	"fmt"

	"github.com/tlsring/tlsring/peer/membership"

	"github.com/prometheus/client_golang/prometheus"
)

// following is the running membership.Follow, if Config.Membership is set.
type following struct {
	metrics *membership.Metrics
	cancel  context.CancelFunc
	done    chan struct{}
}

// startFollowing starts following Config.Membership, if set.
func (p *Peer) startFollowing() error {
	src := p.cfg.Membership
	if src == nil {
		return nil
	}
	f := &following{metrics: membership.NewMetrics(prometheus.Labels{"member": p.self}), done: make(chan struct{})}
	if p.cfg.Registerer != nil {
		if err := p.cfg.Registerer.Register(f.metrics); err != nil {
			return fmt.Errorf("peer: registering membership metrics: %w", err)
		}
	}
	var ctx context.Context
	ctx, f.cancel = context.WithCancel(p.bg)
	liveness, _ := any(p).(membership.Liveness) // where the member takes liveness from its source
	p.following = f
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(f.done)
		err := membership.Follow(ctx, src, p, membership.Config{
			Self: p.self, Members: p.Members(), Grace: p.cfg.MembershipGrace,
			Liveness: liveness, Logger: p.log, Metrics: f.metrics,
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			p.log.Error("membership source stopped; the ring stays as it is until SetMembers", "err", err)
		}
	}()
	return nil
}

// stopFollowing stops following the membership source and waits until no
// list from it can be applied any more.
func (p *Peer) stopFollowing() {
	if f := p.following; f != nil {
		f.cancel()
		<-f.done
	}
}

// unregisterFollowing removes the membership metrics from Registerer.
func (p *Peer) unregisterFollowing() {
	if f := p.following; f != nil && p.cfg.Registerer != nil {
		p.cfg.Registerer.Unregister(f.metrics)
	}
}
