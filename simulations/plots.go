// plots.go: the SVG plots of a run (gonum.org/v1/plot): resumption rate,
// handshake and lookup latency percentiles and store memory over virtual
// time, one line per strategy, faults as dashed vertical lines.

package simulations

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xff, 0x7f, 0x0e, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
}

type series struct {
	name   string
	xy     plotter.XYs
	dashed bool
}

func (r *Result) plots() (map[string][]byte, error) {
	out := map[string][]byte{}
	type spec struct {
		file, title, y string
		lines          func(s *StrategyResult) []series
		onlyRing       bool
	}
	pts := func(s *StrategyResult, f func(p *sample) (float64, bool)) plotter.XYs {
		var xy plotter.XYs
		for i := range s.Series {
			if v, ok := f(&s.Series[i]); ok {
				xy = append(xy, plotter.XY{X: float64(s.Series[i].T) / 1e9, Y: v})
			}
		}
		return xy
	}
	specs := []spec{
		{"resumption.svg", "Resumed handshakes (of those offering a ticket)", "resumed %", func(s *StrategyResult) []series {
			return []series{{s.Name, pts(s, func(p *sample) (float64, bool) { return 100 * ratio(p.C.Resumed, p.C.Offered), p.C.Offered > 0 }), false}}
		}, false},
		{"handshake_latency.svg", "Handshake latency, p50 (solid) and p99 (dashed)", "ms", func(s *StrategyResult) []series {
			return []series{
				{s.Name + " p50", pts(s, func(p *sample) (float64, bool) { return float64(p.HSP50) / 1e6, p.C.Handshakes > 0 }), false},
				{s.Name + " p99", pts(s, func(p *sample) (float64, bool) { return float64(p.HSP99) / 1e6, p.C.Handshakes > 0 }), true},
			}
		}, false},
		{"lookup_latency.svg", "Lookup latency, p50 (solid) and p99 (dashed)", "µs", func(s *StrategyResult) []series {
			return []series{
				{s.Name + " p50", pts(s, func(p *sample) (float64, bool) { return float64(p.LkP50) / 1e3, p.LkP50 > 0 }), false},
				{s.Name + " p99", pts(s, func(p *sample) (float64, bool) { return float64(p.LkP99) / 1e3, p.LkP99 > 0 }), true},
			}
		}, true},
		{"memory.svg", "Store bytes per member, mean (solid) and max (dashed)", "MiB", func(s *StrategyResult) []series {
			return []series{
				{s.Name + " mean", pts(s, func(p *sample) (float64, bool) { return float64(p.MemMean) / (1 << 20), true }), false},
				{s.Name + " max", pts(s, func(p *sample) (float64, bool) { return float64(p.MemMax) / (1 << 20), true }), true},
			}
		}, true},
	}
	for _, sp := range specs {
		p := plot.New()
		p.Title.Text = sp.title
		p.X.Label.Text = "virtual time (s)"
		p.Y.Label.Text = sp.y
		p.Legend.Top = true
		p.Legend.Left = true
		p.Add(plotter.NewGrid())
		ymin, ymax := math.Inf(1), math.Inf(-1)
		for i := range r.Strategies {
			s := &r.Strategies[i]
			if sp.onlyRing && s.Total.Hits+s.Total.Misses+s.Total.Timeouts+s.Total.Errors == 0 && s.MemPeak == 0 {
				continue
			}
			for _, ln := range sp.lines(s) {
				if len(ln.xy) == 0 {
					continue
				}
				l, err := plotter.NewLine(ln.xy)
				if err != nil {
					return nil, fmt.Errorf("simulations: plot %s: %w", sp.file, err)
				}
				l.Color = palette[i%len(palette)]
				l.Width = vg.Points(1.2)
				if ln.dashed {
					l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
				}
				p.Add(l)
				p.Legend.Add(ln.name, l)
				for _, q := range ln.xy {
					ymin, ymax = min(ymin, q.Y), max(ymax, q.Y)
				}
			}
		}
		if math.IsInf(ymin, 1) {
			ymin, ymax = 0, 1
		}
		if ymin == ymax {
			ymax = ymin + 1
		}
		for _, f := range r.Faults {
			x := f.At.Seconds()
			l, err := plotter.NewLine(plotter.XYs{{X: x, Y: ymin}, {X: x, Y: ymax}})
			if err != nil {
				return nil, err
			}
			l.Color = color.Gray{Y: 0x60}
			l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
			p.Add(l)
		}
		p.X.Min = 0
		p.X.Max = r.Scenario.Duration.D().Seconds()
		var b bytes.Buffer
		wt, err := p.WriterTo(8*vg.Inch, 4*vg.Inch, "svg")
		if err != nil {
			return nil, fmt.Errorf("simulations: plot %s: %w", sp.file, err)
		}
		if _, err := wt.WriteTo(&b); err != nil {
			return nil, fmt.Errorf("simulations: plot %s: %w", sp.file, err)
		}
		out[sp.file] = b.Bytes()
	}
	return out, nil
}
