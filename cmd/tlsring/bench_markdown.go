// bench_markdown.go: `tlsring bench --markdown`, the report as Markdown
// tables, the form docs/benchmarks.md and the README quote.

package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// printMarkdown writes the report as Markdown: the command and machine,
// then the targets, handshake, ratio and transport tables.
func (r *benchReport) printMarkdown(w io.Writer) {
	o, m := r.o, r.Machine
	fmt.Fprintf(w, "`%s`: %d rounds, ", r.Command, o.rounds)
	if o.handshakes > 0 {
		fmt.Fprintf(w, "%d handshakes per run", o.handshakes)
	} else {
		fmt.Fprintf(w, "%v per run", o.duration)
	}
	fmt.Fprintf(w, ", %d clients, %.0f s; %d CPUs", o.clients, r.ElapsedS, m.CPUs)
	if m.CPUModel != "" {
		fmt.Fprintf(w, " (%s)", m.CPUModel)
	}
	fmt.Fprintf(w, ", %s %s/%s, load average %.1f before and %.1f after", m.Go, m.OS, m.Arch, m.LoadBefore, m.LoadAfter)
	if m.Commit != "" {
		fmt.Fprintf(w, ", commit %s", m.Commit)
	}
	if m.Memcached != "" {
		fmt.Fprintf(w, ", %s", m.Memcached)
	}
	fmt.Fprintln(w, ".")
	for _, n := range r.Notices {
		fmt.Fprintf(w, "\nNotice: %s.\n", n)
	}

	fmt.Fprintf(w, "\n| target | where | measured |\n|---|---|---|\n")
	for _, t := range r.Targets {
		verdict := ""
		if t.Missed {
			verdict = " **missed**"
		}
		fmt.Fprintf(w, "| %s %s | %s | %.2fx%s |\n", mdEscape(t.Name), strings.NewReplacer("<=", "≤", ">=", "≥").Replace(t.Target), t.Where, t.Ratio, verdict)
	}

	fmt.Fprintf(w, "\n| cell | configuration | handshakes per run | resumed | cluster CPU per handshake | of it memcached | p50 | p99 |\n|---|---|---|---|---|---|---|---|\n")
	for _, cr := range r.Cells {
		for i, c := range cr.Configs {
			cell := ""
			if i == 0 {
				cell = cr.cell.String()
			}
			if c.Skipped != "" || c.Median == nil {
				fmt.Fprintf(w, "| %s | %s | skipped | | | | | |\n", cell, c.Name)
				continue
			}
			md := c.Median
			res := "-"
			if md.ResumedFraction >= 0 {
				res = fmt.Sprintf("%.1f%%", 100*md.ResumedFraction)
			}
			mc := ""
			if md.MemcachedCPUus > 0 {
				mc = fmtUS(md.MemcachedCPUus)
			}
			fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s |\n", cell, c.Name, md.Handshakes, res, fmtUS(md.CPUus), mc, fmtUS(md.P50us), fmtUS(md.P99us))
		}
	}

	var names []string
	for _, d := range cellRatios {
		if slices.Contains(o.configs, d.num) && slices.Contains(o.configs, d.den) {
			names = append(names, d.num+" / "+d.den)
		}
	}
	fmt.Fprintf(w, "\n| cell | %s |\n|---%s|\n", strings.Join(names, " | "), strings.Repeat("|---", len(names)))
	for _, cr := range r.Cells {
		row := []string{cr.cell.String()}
		for _, n := range names {
			row = append(row, mdRatio(findRatio(cr.Ratios, n, "")))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}

	if t := r.Transport; t != nil {
		fmt.Fprintf(w, "\n| path (%d-byte values) | p50 | p99 | lookups/s at %d in flight | CPU per lookup, both ends |\n|---|---|---|---|---|\n", t.ValueBytes, t.Conc)
		for _, p := range t.Paths {
			if p.Skipped != "" || p.Median == nil {
				fmt.Fprintf(w, "| %s | skipped | | | |\n", p.Name)
				continue
			}
			md := p.Median
			fmt.Fprintf(w, "| %s | %s | %s | %.0f | %s |\n", p.Name, fmtUS(md.P50us), fmtUS(md.P99us), md.Rate, fmtUS(md.CPUusOp))
		}
		fmt.Fprintln(w)
		for _, rr := range t.Ratios {
			fmt.Fprintf(w, "- %s, %s: %s\n", rr.Name, rr.Metric, mdRatio(&rr))
		}
	}
}

// mdRatio is fmtRatio with **missed** in bold.
func mdRatio(rr *ratioReport) string {
	if rr == nil {
		return "-"
	}
	s := fmt.Sprintf("%.2fx", rr.Median)
	if rr.Missed != nil {
		if *rr.Missed {
			s += fmt.Sprintf(" (target %s: **missed**)", strings.ReplaceAll(rr.Target, "<=", "≤"))
		} else {
			s += fmt.Sprintf(" (target %s)", strings.ReplaceAll(rr.Target, "<=", "≤"))
		}
	}
	return strings.ReplaceAll(s, ">=", "≥")
}

// mdEscape escapes the characters Markdown tables treat specially.
func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
