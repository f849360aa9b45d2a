package main

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// chartName is the chart's file name beside the -doc file, and
// faultsChartName a -faults run's.
const (
	chartName       = "latency.png"
	faultsChartName = "latency-faults.png"
)

// The chart's size: one panel per broker, chartWidth by panelHeight each,
// at chartDPI (so 1200 by 400 pixels a panel).
const (
	chartWidth  = 12 * vg.Inch
	panelHeight = 4 * vg.Inch
	chartDPI    = 100
)

// logScaleAbove is how far above the p50s' median the largest latency
// must be for the latency axis to be logarithmic, so that the p50s stay
// readable beside a fault's peak.
const logScaleAbove = 8

// The series' colours.
var (
	p50Colour   = color.RGBA{R: 0, G: 114, B: 178, A: 255}
	p99Colour   = color.RGBA{R: 230, G: 159, B: 0, A: 255}
	maxColour   = color.RGBA{R: 140, G: 140, B: 140, A: 255}
	faultColour = color.RGBA{R: 200, G: 30, B: 30, A: 255}
)

// chartAxes are the ranges every panel shares, so that they compare.
type chartAxes struct {
	xMax       float64 // seconds
	yMin, yMax float64 // seconds
	log        bool
}

// axesFor returns the axes that fit every run's seconds.
func axesFor(runs []*brokerRun) chartAxes {
	var a chartAxes
	var p50s []float64
	a.yMin = math.Inf(1)
	for _, run := range runs {
		for _, s := range run.steady.seconds {
			a.xMax = max(a.xMax, (s.at + time.Second).Seconds())
			a.yMin = min(a.yMin, s.p50.Seconds())
			a.yMax = max(a.yMax, s.max.Seconds())
			p50s = append(p50s, s.p50.Seconds())
		}
	}
	slices.Sort(p50s)
	median := p50s[len(p50s)/2]
	a.log = a.yMax > logScaleAbove*median && a.yMin > 0
	if a.log {
		a.yMin, a.yMax = a.yMin/1.5, a.yMax*1.5
	} else {
		a.yMin, a.yMax = 0, a.yMax*1.1
	}
	return a
}

// writeChart writes a PNG to path with one panel per steady run in runs:
// the p50, p99 and largest latency of the lines appended in each second,
// and the faults injected.
func writeChart(path string, runs []*brokerRun) error {
	if len(runs) == 0 || slices.ContainsFunc(runs, func(r *brokerRun) bool { return r.steady == nil || len(r.steady.seconds) == 0 }) {
		return errors.New("latencybench: a chart needs steady runs with figures")
	}
	axes := axesFor(runs)
	var rows [][]*plot.Plot
	for _, run := range runs {
		p, err := latencyPlot(run, axes)
		if err != nil {
			return err
		}
		rows = append(rows, []*plot.Plot{p})
	}
	img := vgimg.NewWith(vgimg.UseWH(chartWidth, panelHeight*vg.Length(len(rows))), vgimg.UseDPI(chartDPI))
	tiles := draw.Tiles{Rows: len(rows), Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(12), PadY: vg.Points(18)}
	canvases := plot.Align(rows, tiles, draw.New(img))
	for i := range rows {
		rows[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("latencybench: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("latencybench: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("latencybench: %w", err)
	}
	return nil
}

// latencyPlot is one run's panel.
func latencyPlot(run *brokerRun, axes chartAxes) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s (%s): latency of the lines appended in each second", brokerTitle(run.broker), nodeCount(run.nodes))
	p.X.Label.Text = "seconds since the steady phase began (when the lines were appended)"
	p.Y.Label.Text = "latency (s)"
	if axes.log {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	} else {
		p.Y.Tick.Marker = plot.TickerFunc(linearTicks)
	}
	p.Add(plotter.NewGrid())
	secs := run.steady.seconds
	series := []struct {
		name   string
		colour color.Color
		value  func(second) time.Duration
	}{
		{"largest", maxColour, func(s second) time.Duration { return s.max }},
		{"p99", p99Colour, func(s second) time.Duration { return s.p99 }},
		{"p50", p50Colour, func(s second) time.Duration { return s.p50 }},
	}
	for _, s := range series {
		xys := make(plotter.XYs, len(secs))
		for i, sec := range secs {
			xys[i] = plotter.XY{X: sec.at.Seconds() + 0.5, Y: s.value(sec).Seconds()}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("latencybench: chart: %w", err)
		}
		l.Color = s.colour
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	var marks plotter.XYLabels
	for i, f := range run.steady.faults {
		for j, x := range []float64{f.at.Seconds(), f.end.Seconds()} {
			l, err := plotter.NewLine(plotter.XYs{{X: x, Y: axes.yMin}, {X: x, Y: axes.yMax}})
			if err != nil {
				return nil, fmt.Errorf("latencybench: chart: %w", err)
			}
			l.Color = faultColour
			if j == 1 {
				l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			}
			p.Add(l)
		}
		// Labels step down so that neighbours do not overlap.
		y := axes.yMax - (axes.yMax-axes.yMin)*(0.06+0.08*float64(i%3))
		if axes.log {
			y = axes.yMax / math.Pow(axes.yMax/axes.yMin, 0.06+0.08*float64(i%3))
		}
		marks.XYs = append(marks.XYs, plotter.XY{X: f.at.Seconds(), Y: y})
		marks.Labels = append(marks.Labels, " "+f.short)
	}
	if len(marks.Labels) > 0 {
		labels, err := plotter.NewLabels(marks)
		if err != nil {
			return nil, fmt.Errorf("latencybench: chart: %w", err)
		}
		for i := range labels.TextStyle {
			labels.TextStyle[i].Color = faultColour
		}
		p.Add(labels)
	}
	// Last: Add widens the axes to what it is given.
	p.X.Min, p.X.Max = 0, axes.xMax
	p.Y.Min, p.Y.Max = axes.yMin, axes.yMax
	return p, nil
}

// linearTicks labels a linear latency axis from lo to hi at the first of
// a few round steps that gives at most 8 labels, with an unlabelled tick
// half way between.
func linearTicks(lo, hi float64) []plot.Tick {
	step := 60.0
	for _, s := range []float64{0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 30} {
		if (hi-lo)/s <= 8 {
			step = s
			break
		}
	}
	var ticks []plot.Tick
	for i := math.Ceil(lo / step * 2); i*step/2 <= hi; i++ {
		v := math.Round(i*step/2*1000) / 1000
		label := ""
		if math.Mod(i, 2) == 0 {
			label = strconv.FormatFloat(v, 'f', -1, 64)
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: label})
	}
	return ticks
}
