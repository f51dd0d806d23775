// sim.go: `tlsring sim SCENARIO`, the deterministic cluster simulator
// (package simulations): a progress bar, a summary table per strategy, and
// an output folder with CSV time series, SVG plots and report.md.

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tlsring/tlsring/simulations"
)

const simSynopsis = `tlsring sim SCENARIO runs a scenario file (see simulations/README.md and
simulations/scenarios/) in virtual time and compares the strategies it lists:
no sharing, tlsring, shared ticket keys (stateless) and sticky balancing, all
seeing the same clients. The same scenario, seed and scale give the same
output, byte for byte.`

type simOptions struct {
	scenario string
	out      string
	seed     uint64
	scale    float64
	jsonFile string
}

func parseSimFlags(args []string, stdout, stderr io.Writer) (simOptions, error) {
	var o simOptions
	fs := newFlagSet("sim", simSynopsis, stdout, stderr)
	fs.StringVar(&o.out, "out", "", "output folder (default sim-out/<scenario name>)")
	fs.Uint64Var(&o.seed, "seed", 0, "random seed (0: the scenario's)")
	fs.Float64Var(&o.scale, "scale", 1, "multiply the scenario's arrival rate (0.01 runs a hundredth of the handshakes)")
	fs.StringVar(&o.jsonFile, "json", "", "also write the summary (with before/after the first fault) as JSON to this file (- for stdout)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tlsring sim SCENARIO [flags]\n\n%s\n\nFlags:\n", simSynopsis)
		fs.PrintDefaults()
	}
	var pos string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return o, err
	}
	rest := fs.Args()
	if pos == "" && len(rest) > 0 {
		pos = rest[0]
		if err := parseFlags(fs, rest[1:], stdout); err != nil {
			return o, err
		}
		rest = fs.Args()
	}
	switch {
	case pos == "":
		return o, usagef("missing SCENARIO: a scenario file such as simulations/scenarios/steady.yaml")
	case len(rest) > 0:
		return o, usagef("unexpected argument %q after the scenario", rest[0])
	case o.scale <= 0 || o.scale > 1000:
		return o, usagef("-scale %v: want a number above 0, at most 1000", o.scale)
	}
	o.scenario = pos
	return o, nil
}

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseSimFlags(args, stdout, stderr)
	if err != nil {
		return err
	}
	sc, err := simulations.LoadScenario(o.scenario)
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Join("sim-out", sc.Name)
	}
	tty := isTerminal(stderr)
	start := time.Now()
	lastLine := -1
	progress := func(done float64, hs int64) {
		if ctx.Err() != nil {
			return
		}
		if tty {
			const width = 40
			n := int(done * width)
			fmt.Fprintf(stderr, "\r[%s%s] %3.0f%%  %d handshakes  %v", strings.Repeat("=", n), strings.Repeat(" ", width-n), 100*done, hs, time.Since(start).Round(time.Second))
			if done >= 1 {
				fmt.Fprintln(stderr)
			}
			return
		}
		if step := int(done * 10); step > lastLine {
			lastLine = step
			fmt.Fprintf(stderr, "tlsring sim: %3.0f%% of virtual time, %d handshakes, %v\n", 100*done, hs, time.Since(start).Round(time.Millisecond))
		}
	}
	fmt.Fprintf(stderr, "tlsring sim: %s: %d members, %v of virtual time, strategies %s, scale %g\n", sc.Name, sc.Members, sc.Duration.D(), strings.Join(sc.Strategies, ", "), o.scale)
	res, err := simulations.Run(sc, simulations.Options{Seed: o.seed, Scale: o.scale, Progress: progress})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if err := res.WriteDir(o.out); err != nil {
		return err
	}
	if o.jsonFile != "" {
		w := stdout
		if o.jsonFile != "-" {
			f, err := os.Create(o.jsonFile)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		if err := res.WriteJSON(w); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout)
	if err := res.WriteTable(stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%d events in %v; plots, CSV and report in %s\n", res.Events, elapsed.Round(time.Millisecond), filepath.Join(o.out, "report.md"))
	return nil
}
