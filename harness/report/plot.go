package report

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// Plots are PNGs of 800 pixels wide. Each carries the header as PNG text
// chunks and a one-line provenance under its title. Non-finite data points
// are left out (gonum refuses them); a plot with no data is not written.

const (
	plotDPI    = 96
	plotWidth  = 800 // pixels
	plotHeight = 400 // one panel
	plotTall   = 540 // two panels
)

var errNoData = errors.New("no data to plot")

func px(n int) vg.Length { return vg.Length(n) * vg.Inch / plotDPI }

func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	p.Legend.ThumbnailWidth = vg.Points(20)
	p.Add(plotter.NewGrid())
	return p
}

// xyLine is a named series with its style.
type xyLine struct {
	name   string
	xys    plotter.XYs
	color  color.Color
	dashed bool
}

// addLines adds lines to p, breaking each where a point is missing (nil
// entries are gaps) and marking lone points with a dot.
func addLines(p *plot.Plot, lines ...xyLine) (points int, err error) {
	for _, l := range lines {
		style := draw.LineStyle{Color: l.color, Width: vg.Points(1.5)}
		if l.dashed {
			style.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		var segs []plotter.XYs
		var cur plotter.XYs
		for _, xy := range l.xys {
			if !finite(xy.X) || !finite(xy.Y) {
				if len(cur) > 0 {
					segs = append(segs, cur)
				}
				cur = nil
				continue
			}
			cur = append(cur, xy)
		}
		if len(cur) > 0 {
			segs = append(segs, cur)
		}
		legend := false
		for _, seg := range segs {
			points += len(seg)
			var thumb plot.Thumbnailer
			if len(seg) == 1 {
				s, err := plotter.NewScatter(seg)
				if err != nil {
					return 0, fmt.Errorf("plot %s: %w", l.name, err)
				}
				s.GlyphStyle = draw.GlyphStyle{Color: l.color, Radius: vg.Points(2), Shape: draw.CircleGlyph{}}
				p.Add(s)
				thumb = s
			} else {
				ln, err := plotter.NewLine(seg)
				if err != nil {
					return 0, fmt.Errorf("plot %s: %w", l.name, err)
				}
				ln.LineStyle = style
				p.Add(ln)
				thumb = ln
			}
			if !legend && l.name != "" {
				p.Legend.Add(l.name, thumb)
				legend = true
			}
		}
	}
	return points, nil
}

// gap marks a missing point in an xyLine.
var gap = plotter.XY{X: math.NaN(), Y: math.NaN()}

// fromZero makes the y axis start at 0 with headroom for the legend.
func fromZero(p *plot.Plot) {
	p.Y.Min = 0
	if !(p.Y.Max > 0) || math.IsInf(p.Y.Max, 0) {
		p.Y.Max = 1
	}
	p.Y.Max *= 1.25
}

// render draws the plots stacked vertically and returns the PNG with the
// header in text chunks.
func render(h results.Header, heightPx int, plots ...*plot.Plot) ([]byte, error) {
	c := vgimg.NewWith(vgimg.UseWH(px(plotWidth), px(heightPx)), vgimg.UseDPI(plotDPI))
	dc := draw.New(c)
	if len(plots) == 1 {
		plots[0].Draw(dc)
	} else {
		grid := make([][]*plot.Plot, len(plots))
		for i, p := range plots {
			grid[i] = []*plot.Plot{p}
		}
		tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadY: vg.Points(10),
			PadTop: vg.Points(2), PadBottom: vg.Points(2), PadLeft: vg.Points(2), PadRight: vg.Points(8)}
		for i, cv := range plot.Align(grid, tiles, dc) {
			plots[i].Draw(cv[0])
		}
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	return pngWithText(buf.Bytes(), [][2]string{
		{"Title", plots[0].Title.Text},
		{"Software", "chronicleweaver harness/report"},
		{"Source", h.Command},
		{"Comment", headerText(h)},
	})
}

// pngWithText inserts iTXt chunks (UTF-8 text) right after the IHDR chunk.
func pngWithText(data []byte, kv [][2]string) ([]byte, error) {
	const sig = 8
	if len(data) < sig+8 || string(data[sig+4:sig+8]) != "IHDR" {
		return nil, errors.New("png: no IHDR chunk")
	}
	end := sig + 12 + int(binary.BigEndian.Uint32(data[sig:sig+4]))
	if end > len(data) {
		return nil, errors.New("png: short IHDR chunk")
	}
	var out bytes.Buffer
	out.Write(data[:end])
	for _, e := range kv {
		if e[1] == "" {
			continue
		}
		// keyword, NUL, compression flag and method (none), empty
		// language tag, NUL, empty translated keyword, NUL, text.
		body := append([]byte(e[0]), 0, 0, 0, 0, 0)
		body = append(body, e[1]...)
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(body)))
		out.Write(n[:])
		crc := crc32.NewIEEE()
		crc.Write([]byte("iTXt"))
		crc.Write(body)
		out.WriteString("iTXt")
		out.Write(body)
		binary.BigEndian.PutUint32(n[:], crc.Sum32())
		out.Write(n[:])
	}
	out.Write(data[end:])
	return out.Bytes(), nil
}

func titled(h results.Header, title string) string { return title + "\n" + provenance(h) }

// plotThroughput: requests sent and errors per second, acknowledged
// events per second, over time.
func plotThroughput(h results.Header, name string, pts []results.Point) ([]byte, error) {
	if len(pts) == 0 {
		return nil, errNoData
	}
	var sent, errs, events plotter.XYs
	for _, pt := range pts {
		sent = append(sent, plotter.XY{X: pt.T, Y: pt.Sent})
		errs = append(errs, plotter.XY{X: pt.T, Y: pt.Errors})
		events = append(events, plotter.XY{X: pt.T, Y: pt.EventsPerSec})
	}
	top := newPlot(titled(h, name+": throughput"), "time since start (s)", "events/s")
	if _, err := addLines(top, xyLine{name: "acknowledged events/s", xys: events, color: plotutil.Color(0)}); err != nil {
		return nil, err
	}
	fromZero(top)
	bottom := newPlot("", "time since start (s)", "requests/s")
	if _, err := addLines(bottom,
		xyLine{name: "sent requests/s", xys: sent, color: plotutil.Color(1)},
		xyLine{name: "errors/s (fail + unknown)", xys: errs, color: plotutil.Color(2), dashed: true},
	); err != nil {
		return nil, err
	}
	fromZero(bottom)
	return render(h, plotTall, top, bottom)
}

// plotLatency: p50 and p99 of the completions of each bucket over time.
func plotLatency(h results.Header, name string, pts []results.Point) ([]byte, error) {
	var p50, p99 plotter.XYs
	for _, pt := range pts {
		if pt.Completed == 0 {
			p50, p99 = append(p50, gap), append(p99, gap)
			continue
		}
		p50 = append(p50, plotter.XY{X: pt.T, Y: pt.P50})
		p99 = append(p99, plotter.XY{X: pt.T, Y: pt.P99})
	}
	p := newPlot(titled(h, name+": request latency"), "time since start (s)", "latency (ms)")
	n, err := addLines(p,
		xyLine{name: "p99", xys: p99, color: plotutil.Color(0)},
		xyLine{name: "p50", xys: p50, color: plotutil.Color(1)},
	)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errNoData
	}
	fromZero(p)
	return render(h, plotHeight, p)
}

// plotDistribution: the CDF of request latency on a log axis, with the
// p50 and p99 marked.
func plotDistribution(h results.Header, name string, d *results.Distribution) ([]byte, error) {
	const floor = 1e-3 // ms; a log axis needs positive values
	if d == nil || len(d.Points) == 0 {
		return nil, errNoData
	}
	var cdf plotter.XYs
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, q := range d.Points {
		if !finite(q.MS) || !finite(q.Share) {
			continue
		}
		x := math.Max(q.MS, floor)
		lo, hi = math.Min(lo, x), math.Max(hi, x)
		cdf = append(cdf, plotter.XY{X: x, Y: 100 * q.Share})
	}
	if len(cdf) == 0 {
		return nil, errNoData
	}
	lo = math.Pow10(int(math.Floor(math.Log10(lo))))
	hi = math.Pow10(int(math.Ceil(math.Log10(hi))))
	if hi <= lo {
		hi = lo * 10
	}
	p := newPlot(titled(h, fmt.Sprintf("%s: request latency distribution (%s requests)", name, thousands(int64(d.N)))),
		"request latency (ms, log scale)", "requests at or below (%)")
	p.Legend.Top, p.Legend.Left = true, true
	lines := []xyLine{{name: "cumulative share", xys: cdf, color: plotutil.Color(0)}}
	for i, m := range []struct {
		name string
		v    float64
	}{{"p50", d.P50}, {"p99", d.P99}} {
		if finite(m.v) {
			x := math.Min(math.Max(m.v, lo), hi)
			lines = append(lines, xyLine{name: m.name + " " + fmtMS(m.v) + " ms", xys: plotter.XYs{{X: x, Y: 0}, {X: x, Y: 100}},
				color: plotutil.Color(i + 1), dashed: true})
		}
	}
	if _, err := addLines(p, lines...); err != nil {
		return nil, err
	}
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks{}
	p.X.Min, p.X.Max = lo, hi
	p.Y.Min, p.Y.Max = 0, 100
	return render(h, plotHeight, p)
}

// logTicks marks 1, 2 and 5 times each power of ten, with minor ticks
// between.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := int(math.Floor(math.Log10(lo))); e <= int(math.Ceil(math.Log10(hi))); e++ {
		for m := 1; m < 10; m++ {
			v := float64(m) * math.Pow10(e)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// plotSearch: p99 against offered rate (with the bound), and achieved
// against offered rate.
func plotSearch(h results.Header, name string, steps []results.Step, boundMS float64) ([]byte, error) {
	if len(steps) == 0 {
		return nil, errNoData
	}
	var p99, pass, fail, achieved, ideal plotter.XYs
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range steps {
		if !finite(s.Rate) {
			continue
		}
		lo, hi = math.Min(lo, s.Rate), math.Max(hi, s.Rate)
		xy := plotter.XY{X: s.Rate, Y: s.HTTP.P99}
		if s.HTTP.N == 0 {
			xy.Y = math.NaN()
		}
		p99 = append(p99, xy)
		if finite(xy.Y) {
			if s.Pass {
				pass = append(pass, xy)
			} else {
				fail = append(fail, xy)
			}
		}
		achieved = append(achieved, plotter.XY{X: s.Rate, Y: s.Achieved})
	}
	if len(achieved) == 0 {
		return nil, errNoData
	}
	ideal = plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}}
	top := newPlot(titled(h, name+": rate search"), "offered rate (requests/s)", "HTTP p99 (ms)")
	top.Legend.Left = true
	lines := []xyLine{{name: "p99", xys: p99, color: plotutil.Color(0)}}
	if boundMS > 0 && finite(boundMS) {
		lines = append(lines, xyLine{name: "bound " + fmtMS(boundMS) + " ms", xys: plotter.XYs{{X: lo, Y: boundMS}, {X: hi, Y: boundMS}},
			color: plotutil.Color(2), dashed: true})
	}
	if _, err := addLines(top, lines...); err != nil {
		return nil, err
	}
	for _, g := range []struct {
		name  string
		xys   plotter.XYs
		shape draw.GlyphDrawer
	}{{"step passed", pass, draw.CircleGlyph{}}, {"step failed", fail, draw.CrossGlyph{}}} {
		if len(g.xys) == 0 {
			continue
		}
		s, err := plotter.NewScatter(g.xys)
		if err != nil {
			return nil, fmt.Errorf("plot steps: %w", err)
		}
		s.GlyphStyle = draw.GlyphStyle{Color: plotutil.Color(0), Radius: vg.Points(3), Shape: g.shape}
		top.Add(s)
		top.Legend.Add(g.name, s)
	}
	fromZero(top)
	bottom := newPlot("", "offered rate (requests/s)", "achieved (requests/s)")
	bottom.Legend.Left = true
	if _, err := addLines(bottom,
		xyLine{name: "achieved", xys: achieved, color: plotutil.Color(1)},
		xyLine{name: "achieved = offered", xys: ideal, color: color.Gray{Y: 128}, dashed: true},
	); err != nil {
		return nil, err
	}
	fromZero(bottom)
	return render(h, plotTall, top, bottom)
}
