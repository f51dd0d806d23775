// The QUIC transport: placeholder until the QUIC implementation lands.

package transport

import (
	"crypto/tls"
	"errors"
	"log/slog"
)

// QUICConfig configures a QUIC transport.
type QUICConfig struct {
	Addr   string       // UDP address to listen on, also this member's name
	TLS    *tls.Config  // certificates and cluster CA; cloned, never modified
	Logger *slog.Logger // nil = slog.Default()
}

// ListenQUIC listens on cfg.Addr and serves incoming requests with h.
func ListenQUIC(cfg QUICConfig, h Handler) (Transport, error) {
	return nil, errors.New("transport: QUIC not implemented yet")
}
