// registerer_test.go: Config.Registerer registers the member's metrics and
// its QUIC transport's, every series labelled with the member, so two
// members share one registry.

package peer

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tlsring/tlsring/transport/transporttest"
)

func TestRegistererHasTransportMetricsPerMember(t *testing.T) {
	ca := transporttest.NewCA(t)
	addrs := transporttest.FreeUDPAddrs(t, 2)
	reg := prometheus.NewRegistry()
	for _, a := range addrs {
		p, err := New(Config{Self: a, Members: addrs, TLS: ca.MemberTLS(t, "127.0.0.1"), Logger: quiet, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{} // member label of tlsring_transport_calls_total
	for _, f := range families {
		for _, m := range f.GetMetric() {
			member := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "member" {
					member = l.GetValue()
				}
			}
			if member == "" {
				t.Errorf("%s has no member label", f.GetName())
			}
			if f.GetName() == "tlsring_transport_calls_total" {
				seen[member] = true
			}
		}
		if !strings.HasPrefix(f.GetName(), "tlsring_") {
			t.Errorf("unexpected series %s", f.GetName())
		}
	}
	for _, a := range addrs {
		if !seen[a] {
			t.Errorf("no tlsring_transport_calls_total{member=%q}", a)
		}
	}
}
