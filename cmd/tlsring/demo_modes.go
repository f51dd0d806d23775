// demo_modes.go: `tlsring demo -mode stateless|hybrid`: one ticket
// keyring per member, agreeing the fleet's rotating ticket keys through
// the ring, for the demo's TLS servers.

package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tlsring/tlsring/ticketkeys"
	"github.com/tlsring/tlsring/tlsglue"
)

// startKeyrings starts a keyring per member when the mode needs one and
// waits (up to 10 s) until each holds the ring's key of the current epoch.
func (cl *demoCluster) startKeyrings(mode tlsglue.Mode, log *slog.Logger) error {
	if mode == tlsglue.Stateful {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	cl.stopKeys = func() { cancel(); wg.Wait() }
	for _, p := range cl.peers {
		k, err := ticketkeys.New(p, ticketkeys.Options{Logger: log})
		if err != nil {
			return err
		}
		cl.keyrings = append(cl.keyrings, k)
	}
	// Each refreshes in turn: the owner of the epoch's entry makes the key
	// and the others then find it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		held := 0
		var err error
		for _, k := range cl.keyrings {
			_, e := k.Refresh(ctx)
			if keys := k.Keys(); e == nil && len(keys) > 0 && !keys[0].Local {
				held++
			} else if e != nil {
				err = e
			}
		}
		if held == len(cl.keyrings) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d members hold no ring ticket key after 10 s (last error: %v)", len(cl.keyrings)-held, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, k := range cl.keyrings {
		wg.Go(func() { k.Run(ctx) })
	}
	return nil
}

// ticketKeys returns member i's keyring as tlsglue wants it (nil when the
// mode has none).
func (cl *demoCluster) ticketKeys(i int) tlsglue.TicketKeys {
	if i >= len(cl.keyrings) {
		return nil
	}
	return cl.keyrings[i]
}

// modeLabel names the mode in the demo's rows: nothing for the default.
func modeLabel(m tlsglue.Mode) string {
	if m == tlsglue.Stateful {
		return ""
	}
	return " " + m.String()
}
