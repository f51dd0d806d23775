// admin.go: the admin HTTP server with /metrics (Prometheus), /healthz
// (liveness) and /readyz (readiness).

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminServer serves /metrics from a registry; /healthz, liveness: 200
// "ok" while serving, 503 with the reason once draining; and /readyz,
// readiness: 200 when ready answers true, else 503, with ready's text
// either way (what is missing, unreachable members and why).
type adminServer struct {
	srv      *http.Server
	l        net.Listener
	draining atomic.Pointer[string]
	done     chan error
}

// readyFunc reports whether the process is ready to take traffic, and a
// text that says why or why not.
type readyFunc func() (bool, string)

// startAdmin listens on addr and serves in the background. ready may be
// nil: /readyz then follows /healthz.
func startAdmin(addr string, reg *prometheus.Registry, log *slog.Logger, ready readyFunc) (*adminServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	a := &adminServer{l: l, done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelError),
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if reason := a.draining.Load(); reason != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, *reason)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if reason := a.draining.Load(); reason != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready: "+*reason)
			return
		}
		ok, text := true, "ready"
		if ready != nil {
			ok, text = ready()
		}
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, text)
	})
	a.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() { a.done <- a.srv.Serve(l) }()
	return a, nil
}

// Addr returns the address the server listens on.
func (a *adminServer) Addr() string { return a.l.Addr().String() }

// setDraining makes /healthz and /readyz answer 503 with reason.
func (a *adminServer) setDraining(reason string) { a.draining.Store(&reason) }

// shutdown stops the server, waiting for requests in flight until ctx ends.
func (a *adminServer) shutdown(ctx context.Context) error {
	err := a.srv.Shutdown(ctx)
	if serr := <-a.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
