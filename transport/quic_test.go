// Tests of the QUIC transport over real QUIC on loopback.

package transport

import (
	"fmt"
	"testing"
	"time"

	"github.com/tlsring/tlsring/transport/transporttest"
)

func TestThreeMembersReadEachOthersWrites(t *testing.T) {
	ca := transporttest.NewCA(t)
	ms := []*member{startMember(t, ca, nil), startMember(t, ca, nil), startMember(t, ca, nil)}
	ctx := ctxTimeout(t, 10*time.Second)
	for i, m := range ms {
		for j, o := range ms {
			key := []byte(fmt.Sprintf("from-%d-on-%d", i, j))
			resp, err := m.Call(ctx, o.Addr(), &Request{Op: OpSet, Key: key, Value: []byte(m.Addr()), TTL: time.Minute})
			if err != nil || resp.Status != StatusOK {
				t.Fatalf("set %s: %v %+v", key, err, resp)
			}
		}
	}
	for i, m := range ms {
		for j, o := range ms {
			for k := range ms {
				key := []byte(fmt.Sprintf("from-%d-on-%d", k, j))
				resp, err := m.Call(ctx, o.Addr(), &Request{Op: OpGet, Key: key})
				if err != nil || resp.Status != StatusOK || string(resp.Value) != ms[k].Addr() || resp.TTL != time.Minute {
					t.Fatalf("member %d get %s from %d: %v %+v", i, key, j, err, resp)
				}
			}
		}
	}
}
