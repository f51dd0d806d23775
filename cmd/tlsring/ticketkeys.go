// ticketkeys.go: `tlsring peer -ticket-keys-dir`: the fleet's rotating
// session ticket keys (package ticketkeys) agreed through this member and
// written as nginx and Apache key files, with a reload command run after
// each rotation.

package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tlsring/tlsring/peer"
	"github.com/tlsring/tlsring/ticketkeys"
)

// ticketKeyFlags are the peer's ticket key flags, as registered.
type ticketKeyFlags struct {
	dir           *string
	reload        *string
	period        *time.Duration
	retention     *time.Duration
	reloadTimeout *time.Duration
}

// ticketKeyConfig is the checked configuration; dir "" = off.
type ticketKeyConfig struct {
	dir           string
	reload        string
	period        time.Duration
	retention     time.Duration
	reloadTimeout time.Duration
}

func addTicketKeyFlags(fs *flag.FlagSet) *ticketKeyFlags {
	return &ticketKeyFlags{
		dir: fs.String("ticket-keys-dir", "", "`directory` (a tmpfs: the files open every ticket of the retention) to write the fleet's rotating session ticket keys into, for nginx (nginx-N.key, and "+
			ticketkeys.NginxInclude+" to include) and Apache ("+ticketkeys.ApacheFile+") (default: none)"),
		reload:        fs.String("ticket-keys-reload", "", "shell `command` run after the key files change, e.g. 'nginx -s reload' (default: none)"),
		period:        fs.Duration("ticket-key-period", ticketkeys.DefaultPeriod, "how long one ticket key seals new tickets"),
		retention:     fs.Duration("ticket-key-retention", ticketkeys.DefaultRetention, "how long after its period a ticket key still opens tickets, then is erased everywhere; match the terminators' ticket lifetime"),
		reloadTimeout: fs.Duration("ticket-keys-reload-timeout", 30*time.Second, "bound on one run of -ticket-keys-reload"),
	}
}

// check validates the flags.
func (f *ticketKeyFlags) check() (ticketKeyConfig, error) {
	c := ticketKeyConfig{dir: *f.dir, reload: *f.reload, period: *f.period, retention: *f.retention, reloadTimeout: *f.reloadTimeout}
	if c.dir == "" {
		if c.reload != "" {
			return c, usagef("-ticket-keys-reload needs -ticket-keys-dir")
		}
		return c, nil
	}
	if st, err := os.Stat(c.dir); err != nil || !st.IsDir() {
		return c, usagef("-ticket-keys-dir %s: not a directory (create it, on a tmpfs)", c.dir)
	}
	if _, err := ticketkeys.New(nopKeyStore{}, ticketkeys.Options{Period: c.period, Retention: c.retention}); err != nil {
		return c, usagef("-ticket-key-period/-ticket-key-retention: %v", err)
	}
	if c.reloadTimeout <= 0 {
		return c, usagef("-ticket-keys-reload-timeout %v: want a positive duration", c.reloadTimeout)
	}
	return c, nil
}

// nopKeyStore lets check validate options without a ring.
type nopKeyStore struct{}

func (nopKeyStore) Get(context.Context, []byte) ([]byte, error) { return nil, ticketkeys.ErrNotFound }
func (nopKeyStore) Set(context.Context, []byte, []byte, time.Duration) error {
	return nil
}

// startTicketKeys runs the keyring over p and writes the key files after
// every change until the returned stop is called. Off when c.dir is "".
func startTicketKeys(c ticketKeyConfig, p *peer.Peer, reg prometheus.Registerer, log *slog.Logger) (stop func(), err error) {
	if c.dir == "" {
		return func() {}, nil
	}
	m := ticketkeys.NewMetrics(prometheus.Labels{"member": p.Self()})
	if err := reg.Register(m); err != nil {
		return nil, err
	}
	write := func(k *ticketkeys.Keyring) {
		if err := k.WriteFiles(c.dir); err != nil {
			log.Error("writing ticket key files", "dir", c.dir, "err", err)
			return
		}
		log.Info("ticket key files written", "dir", c.dir)
		if c.reload == "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.reloadTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, "/bin/sh", "-c", c.reload).CombinedOutput()
		if err != nil {
			log.Error("ticket key reload command failed", "command", c.reload, "err", err, "output", string(out))
		}
	}
	k, err := ticketkeys.New(p, ticketkeys.Options{
		Period: c.period, Retention: c.retention, Metrics: m, Logger: log, OnChange: write,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { k.Run(ctx) })
	log.Info("ticket keys: writing key files", "dir", c.dir, "period", c.period, "retention", c.retention, "nginx_slots", k.NginxSlots())
	return func() { cancel(); wg.Wait() }, nil
}
