// options.go: Options of a Keyring, their defaults and validation.

package ticketkeys

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

const (
	// DefaultPeriod is how long one key seals new tickets when
	// Options.Period is zero.
	DefaultPeriod = time.Hour
	// DefaultRetention is how long after its epoch a key still opens
	// tickets when Options.Retention is zero; it matches tlsglue's default
	// session lifetime.
	DefaultRetention = 24 * time.Hour
	// MaxRetention is the longest Retention: crypto/tls honours no ticket
	// older than seven days.
	MaxRetention = 7 * 24 * time.Hour
	// maxKeys bounds Retention/Period, the keys held (and fetched after a
	// restart) at once.
	maxKeys = 1024
	// DefaultPrefix starts the ring entry name of each epoch's key.
	DefaultPrefix = "tlsring-ticket-key/"
	// DefaultTimeout bounds each ring operation of a refresh when
	// Options.Timeout is zero.
	DefaultTimeout = 2 * time.Second
)

// Options tunes a Keyring. The zero value is ready to use.
type Options struct {
	// Period is how long one key seals new tickets. 0 = DefaultPeriod (1 h).
	// At least one second.
	Period time.Duration
	// Retention is how long after the end of its epoch a key still opens
	// tickets; then it is erased everywhere. 0 = DefaultRetention (24 h);
	// at most MaxRetention (7 days).
	Retention time.Duration
	// Prefix starts the ring entry names of the keys; fleets (or tenants)
	// sharing one ring but not their keys use different prefixes.
	// "" = DefaultPrefix.
	Prefix string
	// Now is the clock. nil = time.Now.
	Now func() time.Time
	// Timeout bounds each ring operation of a refresh.
	// 0 = DefaultTimeout (2 s).
	Timeout time.Duration
	// OnChange, if set, is called (from Run's goroutine) after a refresh
	// that changed the key set, e.g. to write key files.
	OnChange func(*Keyring)
	// Metrics receives the collectors; nil = private ones (Keyring.Metrics).
	Metrics *Metrics
	// Logger receives logs; nil = slog.Default().
	Logger *slog.Logger
}

// withDefaults checks o, naming every field that is wrong, and returns it
// with every zero field set to its default.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ticketkeys: "+format, args...)) }
	switch {
	case o.Period == 0:
		o.Period = DefaultPeriod
	case o.Period < time.Second:
		bad("Options.Period %v is under one second", o.Period)
	}
	switch {
	case o.Retention == 0:
		o.Retention = DefaultRetention
	case o.Retention < 0:
		bad("Options.Retention %v is negative; use 0 for the default", o.Retention)
	case o.Retention > MaxRetention:
		bad("Options.Retention %v exceeds the 7 days crypto/tls honours", o.Retention)
	}
	if o.Period >= time.Second && o.Retention > 0 && o.Retention/o.Period > maxKeys {
		bad("Options.Retention %v is more than %d periods of %v: too many keys to keep; lengthen Options.Period", o.Retention, maxKeys, o.Period)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if len(o.Prefix) > 200 {
		bad("Options.Prefix is %d bytes (max 200)", len(o.Prefix))
	}
	switch {
	case o.Timeout == 0:
		o.Timeout = DefaultTimeout
	case o.Timeout < 0:
		bad("Options.Timeout %v is negative; use 0 for the default", o.Timeout)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, errors.Join(errs...)
}
