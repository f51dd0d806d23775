package peer

import (
	"context"
	"testing"
	"time"

	"github.com/tlsring/tlsring/transport/transporttest"
)

// remoteKeys returns keys that reader holds no copy of, so every Get goes
// over the transport.
func remoteKeys(reader *Peer, n int) [][]byte {
	var keys [][]byte
	for i := 0; len(keys) < n; i++ {
		owners := reader.Owners(key(i))
		if owners[0] != reader.Self() && (len(owners) < 2 || owners[1] != reader.Self()) {
			keys = append(keys, key(i))
		}
	}
	return keys
}

func benchGet(b *testing.B, peers []*Peer, local bool) {
	ctx := context.Background()
	reader := peers[0]
	var keys [][]byte
	if local {
		for i := 0; len(keys) < 256; i++ {
			if reader.Owners(key(i))[0] == reader.Self() {
				keys = append(keys, key(i))
			}
		}
	} else {
		keys = remoteKeys(reader, 256)
	}
	for _, k := range keys {
		if err := peers[1].Set(ctx, k, make([]byte, 100), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		if _, err := reader.Get(dctx, keys[i&255]); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
}

func BenchmarkGetLocal(b *testing.B) {
	c := newCluster(b, 3, nil)
	benchGet(b, []*Peer{c.peers[c.names[0]], c.peers[c.names[1]]}, true)
}

func BenchmarkGetRemoteMem(b *testing.B) {
	c := newCluster(b, 3, nil)
	benchGet(b, []*Peer{c.peers[c.names[0]], c.peers[c.names[1]]}, false)
}

func BenchmarkGetRemoteQUIC(b *testing.B) {
	ca := transporttest.NewCA(b)
	addrs := transporttest.FreeUDPAddrs(b, 3)
	var peers []*Peer
	for _, a := range addrs {
		p, err := New(Config{Self: a, Members: addrs, TLS: ca.MemberTLS(b, "127.0.0.1"), Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Close() })
		peers = append(peers, p)
	}
	benchGet(b, peers, false)
}
