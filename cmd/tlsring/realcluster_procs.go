// realcluster_procs.go: the member processes of `tlsring real-cluster`:
// throwaway certificates, `tlsring peer -tls-listen` processes on loopback
// (this binary re-executed), their addresses read from their JSON logs,
// readiness, metric scrapes, SIGKILL and SIGTERM.

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tlsring/tlsring/cmd/internal/certgen"
)

// rcMember is one `tlsring peer` process.
type rcMember struct {
	name    string // -listen, the member's name in the ring
	tlsAddr string // its -tls-listen server
	admin   string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error         // valid once exited is closed
}

// rcCerts writes a cluster CA, one member certificate for 127.0.0.1 (every
// member shares it) and a TLS server certificate of type kt into dir.
func rcCerts(dir string, kt certgen.KeyType) (ca *certgen.CA, webCA *certgen.CA, err error) {
	if ca, err = certgen.NewCA("tlsring real-cluster CA", 24*time.Hour); err != nil {
		return nil, nil, err
	}
	member, err := ca.Issue(certgen.ECDSA, 24*time.Hour, "127.0.0.1")
	if err != nil {
		return nil, nil, err
	}
	if webCA, err = certgen.NewCA("tlsring real-cluster web CA", 24*time.Hour); err != nil {
		return nil, nil, err
	}
	web, err := webCA.Issue(kt, 24*time.Hour, "localhost", "127.0.0.1")
	if err != nil {
		return nil, nil, err
	}
	write := func(name string, data []byte) {
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), data, 0o600)
		}
	}
	memberKey, err := certgen.KeyPEM(member.Key)
	if err != nil {
		return nil, nil, err
	}
	webKey, err := certgen.KeyPEM(web.Key)
	if err != nil {
		return nil, nil, err
	}
	write("ca.pem", certgen.CertPEM(ca.Cert))
	write("member.pem", certgen.CertPEM(member.Cert))
	write("member-key.pem", memberKey)
	write("web.pem", certgen.CertPEM(web.Cert))
	write("web-key.pem", webKey)
	return ca, webCA, err
}

// startRCMembers starts n members on free loopback ports and waits until
// every one is ready (/readyz). A UDP port picked free can be taken before
// the member binds it; then it tries again with new ports.
func startRCMembers(ctx context.Context, bin, dir string, n int, deadline time.Duration) ([]*rcMember, error) {
	var lastErr error
	for attempt := range 3 {
		names, err := loopbackMemberNames(n)
		if err != nil {
			return nil, err
		}
		ms := make([]*rcMember, n)
		for i := range ms {
			ms[i] = &rcMember{name: names[i], logPath: filepath.Join(dir, fmt.Sprintf("member%d-try%d.log", i, attempt))}
			lastErr = ms[i].start(bin, dir, names, deadline)
			if lastErr != nil {
				break
			}
		}
		if lastErr == nil {
			lastErr = waitRCReady(ctx, ms, 60*time.Second)
		}
		if lastErr == nil {
			return ms, nil
		}
		for _, m := range ms {
			m.kill()
		}
		if ctx.Err() != nil {
			return nil, lastErr
		}
	}
	return nil, lastErr
}

func (m *rcMember) start(bin, dir string, members []string, deadline time.Duration) error {
	logf, err := os.Create(m.logPath)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	m.cmd = exec.Command(bin, "peer",
		"-listen", m.name, "-members", strings.Join(members, ","),
		"-cert", filepath.Join(dir, "member.pem"), "-key", filepath.Join(dir, "member-key.pem"), "-ca", filepath.Join(dir, "ca.pem"),
		"-admin", "127.0.0.1:0",
		"-tls-listen", "127.0.0.1:0", "-tls-cert", filepath.Join(dir, "web.pem"), "-tls-key", filepath.Join(dir, "web-key.pem"),
		"-tls-deadline", deadline.String(),
		"-leave-timeout", "2s", "-log-format", "json")
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = childProcAttr()
	if err := m.cmd.Start(); err != nil {
		m.cmd = nil
		return fmt.Errorf("starting member %s: %w", m.name, err)
	}
	m.exited = make(chan struct{})
	go func() {
		m.waitErr = m.cmd.Wait()
		close(m.exited)
	}()
	return nil
}

// alive reports whether the process still runs.
func (m *rcMember) alive() bool {
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// readAddrs fills in the admin and TLS addresses from the member's log.
func (m *rcMember) readAddrs() error {
	f, err := os.Open(m.logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Msg       string `json:"msg"`
			Admin     string `json:"admin"`
			TLSListen string `json:"tls_listen"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		switch line.Msg {
		case "TLS server serving":
			m.tlsAddr = line.TLSListen
		case "tlsring peer serving":
			m.admin = line.Admin
		}
	}
	if m.tlsAddr == "" || m.admin == "" {
		return errors.New("not serving yet")
	}
	return nil
}

// logTail is the end of the member's log, for errors.
func (m *rcMember) logTail() string {
	b, _ := os.ReadFile(m.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitRCReady waits until every member serves and its /readyz says ready.
func waitRCReady(ctx context.Context, ms []*rcMember, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, m := range ms {
		for {
			if !m.alive() {
				return fmt.Errorf("member %s exited (%v):\n%s", m.name, m.waitErr, m.logTail())
			}
			why := m.readAddrs()
			if why == nil {
				code, body, err := rcGet(ctx, "http://"+m.admin+"/readyz")
				if err == nil && code == http.StatusOK {
					break
				}
				why = fmt.Errorf("/readyz: %d %s %v", code, strings.TrimSpace(body), err)
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("member %s not ready after %v: %v", m.name, timeout, why)
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// rcHTTP is the client of the admin servers; it keeps no connection.
var rcHTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

func rcGet(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := rcHTTP.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b), err
}

// rcScrape is what the driver reads from one member's /metrics.
type rcScrape struct {
	lookups map[string]float64  // tlsring_tlsglue_lookups_total by result
	latency map[float64]float64 // tlsring_tlsglue_lookup_duration_seconds, cumulative count by upper bound
	cpu     float64             // process_cpu_seconds_total
}

// scrapeRC reads the metrics of the members that are alive, by name, all
// at once.
func scrapeRC(ctx context.Context, ms []*rcMember) map[string]rcScrape {
	out := map[string]rcScrape{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range ms {
		if !m.alive() {
			continue
		}
		wg.Go(func() {
			code, body, err := rcGet(ctx, "http://"+m.admin+"/metrics")
			if err != nil || code != http.StatusOK {
				return
			}
			s := parseRCMetrics(body)
			mu.Lock()
			out[m.name] = s
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// parseRCMetrics reads the samples the driver needs from a Prometheus
// text exposition.
func parseRCMetrics(body string) rcScrape {
	s := rcScrape{lookups: map[string]float64{}, latency: map[float64]float64{}}
	const bucket = `tlsring_tlsglue_lookup_duration_seconds_bucket{le="`
	for _, line := range strings.Split(body, "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch {
		case name == "process_cpu_seconds_total":
			s.cpu = v
		case strings.HasPrefix(name, `tlsring_tlsglue_lookups_total{result="`):
			res := strings.TrimSuffix(strings.TrimPrefix(name, `tlsring_tlsglue_lookups_total{result="`), `"}`)
			s.lookups[res] += v
		case strings.HasPrefix(name, bucket):
			le, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(name, bucket), `"}`), 64)
			if err == nil {
				s.latency[le] += v
			}
		}
	}
	return s
}

// scrapeDiff sums b minus a over the members scraped both times; ok is
// false if fewer than want were (a scrape timed out), and then the sums
// are incomplete.
func scrapeDiff(a, b map[string]rcScrape, want int) (d rcScrape, ok bool) {
	d = rcScrape{lookups: map[string]float64{}, latency: map[float64]float64{}}
	n := 0
	for name, sb := range b {
		sa, ok := a[name]
		if !ok {
			continue
		}
		n++
		d.cpu += sb.cpu - sa.cpu
		for k, v := range sb.lookups {
			d.lookups[k] += v - sa.lookups[k]
		}
		for k, v := range sb.latency {
			d.latency[k] += v - sa.latency[k]
		}
	}
	return d, n >= want
}

// quantile estimates the q-quantile of a cumulative histogram, by linear
// interpolation within the bucket it falls in (as Prometheus's
// histogram_quantile does); beyond the last finite bound it returns that
// bound. 0 for an empty histogram.
func histQuantile(cum map[float64]float64, q float64) float64 {
	les := slices.Sorted(maps.Keys(cum))
	if len(les) == 0 || cum[les[len(les)-1]] == 0 {
		return 0
	}
	rank := q * cum[les[len(les)-1]]
	prevLE, prevN := 0.0, 0.0
	for _, le := range les {
		n := cum[le]
		if n >= rank {
			if math.IsInf(le, 1) {
				return prevLE
			}
			if n == prevN {
				return le
			}
			return prevLE + (le-prevLE)*(rank-prevN)/(n-prevN)
		}
		prevLE, prevN = le, n
	}
	return prevLE
}

// kill ends the process with SIGKILL and waits for it.
func (m *rcMember) kill() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.exited
}

// stop ends the process with SIGTERM (a drain), SIGKILL after timeout.
func (m *rcMember) stop(timeout time.Duration) {
	if !m.alive() {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(timeout):
		m.kill()
	}
}
