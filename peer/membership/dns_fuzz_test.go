// A fuzz target for the DNS source's reading of answers: a server on
// loopback answers every query with the fuzzer's bytes (message ID set to
// the query's); Resolve must not panic, and whatever it accepts must be a
// valid member list.

package membership

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// rawDNS answers each UDP query with its current bytes.
type rawDNS struct {
	pc   net.PacketConn
	mu   sync.Mutex
	resp []byte
}

func (r *rawDNS) serve() {
	buf := make([]byte, 65536)
	for {
		n, from, err := r.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		resp := slices.Clone(r.resp)
		r.mu.Unlock()
		if n >= 2 && len(resp) >= 2 {
			resp[0], resp[1] = buf[0], buf[1] // the query's ID
		}
		r.pc.WriteTo(resp, from)
	}
}

func seedAnswer(f *testing.F, name string, qtype uint16, rrs ...string) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Response = true
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			f.Fatal(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	b, err := m.Pack()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
}

func FuzzDNSAnswer(f *testing.F) {
	srv, a := dns.TypeSRV, dns.TypeA
	seedAnswer(f, "ring.test.", srv, "ring.test. 5 IN SRV 0 10 7000 m0.ring.test.", "ring.test. 5 IN SRV 0 10 7001 m1.ring.test.")
	seedAnswer(f, "ring.test.", srv, "ring.test. 5 IN SRV 0 10 0 m0.ring.test.")
	seedAnswer(f, "ring.test.", srv, "ring.test. 5 IN SRV 0 0 7000 .")
	seedAnswer(f, "ring.test.", srv)
	seedAnswer(f, "ring.test.", a, "ring.test. 5 IN A 10.0.0.1", "ring.test. 5 IN AAAA fd00::1")
	seedAnswer(f, "ring.test.", a, "ring.test. 5 IN CNAME other.test.", "other.test. 5 IN A 10.0.0.2")
	seedAnswer(f, "other.test.", a, "other.test. 5 IN A 10.0.0.2")
	f.Add([]byte{0, 0, 0x81, 0x82, 0, 0, 0, 0, 0, 0, 0, 0}) // SERVFAIL, nothing else
	f.Add([]byte{0, 0})

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer pc.Close()
	server := &rawDNS{pc: pc}
	go server.serve()
	f.Fuzz(func(t *testing.T, resp []byte) {
		server.mu.Lock()
		server.resp = resp
		server.mu.Unlock()
		for _, name := range []string{"ring.test", "ring.test:7000"} { // SRV, then A and AAAA
			d := &DNS{Name: name, Server: pc.LocalAddr().String(), Timeout: 50 * time.Millisecond}
			members, err := d.Resolve(context.Background())
			if err != nil {
				if members != nil {
					t.Fatalf("error %v with members %v", err, members)
				}
				continue
			}
			if len(members) == 0 || !slices.IsSorted(members) || len(slices.Compact(slices.Clone(members))) != len(members) {
				t.Fatalf("members %q: want a non-empty sorted list without duplicates", members)
			}
			for _, m := range members {
				if err := CheckAddr(m); err != nil {
					t.Fatalf("member %q: %v", m, err)
				}
			}
		}
	})
}
