// Command tlsring is the tlsring binary: cluster-wide TLS session
// resumption for a fleet of TLS servers.
//
// Subcommands:
//
//	tlsring demo    a local 3-member cluster with TLS servers and clients, and a table
//	tlsring peer    a standalone ring member (QUIC), with /metrics, /healthz and a memcached face
//	tlsring certs   a cluster CA and member certificates for trying it out
//	tlsring sim     a scenario in the deterministic cluster simulator: table, CSV, SVG plots, report.md
//	tlsring bench   interleaved measurements of handshake cost and transport, medians and ratios against the targets
//	tlsring version the version, Go version, platform and commit of this binary
//
// Run `tlsring <subcommand> -h` for each one's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // bad flags or arguments
)

// errUsage marks errors caused by bad flags; they exit with exitUsage.
var errUsage = errors.New("usage")

// usageError is a bad-flag error with its message; it unwraps to errUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Unwrap() error { return errUsage }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	hidden  bool
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{name: "demo", summary: "run a local 3-member cluster with TLS servers and clients, and compare resumption with and without tlsring", run: runDemo},
		{name: "peer", summary: "run a standalone ring member (QUIC) with /metrics, /healthz and an optional memcached face", run: runPeer},
		{name: "certs", summary: "create a cluster CA (if missing) and a member certificate signed by it", run: runCerts},
		{name: "sim", summary: "run a scenario in the deterministic cluster simulator and compare tlsring with its alternatives", run: runSim},
		{name: "bench", summary: "measure cluster CPU per resumed handshake and the transport against the alternatives, with medians and ratios", run: runBench},
		{name: "version", summary: "print the version, Go version, platform and commit of this binary", run: runVersion},
		{name: demoClientsCmd, hidden: true, run: runDemoClients},
		{name: benchClientCmd, hidden: true, run: runBenchClient},
		{name: realClusterCmd, hidden: true, run: runRealCluster},
	}
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.Is(err, errUsage):
			if _, ok := errors.AsType[*usageError](err); ok {
				fmt.Fprintf(stderr, "tlsring %s: %v\n", c.name, err)
			}
			return exitUsage
		default:
			fmt.Fprintf(stderr, "tlsring %s: %v\n", c.name, err)
			return exitError
		}
	}
	fmt.Fprintf(stderr, "tlsring: unknown subcommand %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "tlsring: cluster-wide TLS session resumption for a fleet of TLS servers.\n\nUsage: tlsring <subcommand> [flags]\n\nSubcommands:\n")
	for _, c := range commands() {
		if !c.hidden {
			fmt.Fprintf(w, "  %-7s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(w, "\nRun 'tlsring <subcommand> -h' for its flags.\n")
}

// newFlagSet returns a flag set for a subcommand that reports errors
// instead of exiting, and prints its help to stdout on -h.
func newFlagSet(name, synopsis string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tlsring "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tlsring %s [flags]\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs. -h prints help to stdout and returns
// flag.ErrHelp; a bad flag returns a one-line error wrapping errUsage.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	// Print -h help to stdout, parse errors to stderr.
	errOut := fs.Output()
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fs.SetOutput(stdout)
			fs.Usage()
			fs.SetOutput(errOut)
			return flag.ErrHelp
		}
	}
	fs.SetOutput(io.Discard) // one line for a bad flag, not the whole help
	err := fs.Parse(args)
	fs.SetOutput(errOut)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v (see '%s -h')", err, fs.Name())
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
