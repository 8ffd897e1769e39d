package results

import (
	"fmt"
	"math"
	"time"
)

// The model of a soak run (issue 15, make soak): resources sampled over a
// long run, each series judged by the slope of its least-squares line after
// the warm-up. Only the model and its arithmetic live here; the sampler
// (harness/scenario) fills it and the report renders it.

// SoakSeries is one quantity sampled over the run: service RSS, goroutines,
// Redis used memory, a table's size, ledger rows, the backlog, a latency
// percentile per minute.
type SoakSeries struct {
	Name string `json:"name"` // "service_rss_bytes", "goroutines", ...
	Unit string `json:"unit"` // "bytes", "count", "ms"
	// Flat says whether the pass criterion demands the series be flat
	// after the warm-up (RSS, goroutines, Redis memory, ledger rows); the
	// others are recorded and plotted only.
	Flat    bool     `json:"flat"`
	Samples []Sample `json:"samples"`
	// Trend is the least-squares line over the samples after the warm-up
	// (nil until Judge).
	Trend *Trend `json:"trend,omitempty"`
}

// Sample is one reading, At seconds after the start of the run.
type Sample struct {
	At    float64 `json:"at"`
	Value float64 `json:"value"`
}

// Trend is a series' least-squares line after the warm-up, and its verdict.
type Trend struct {
	From      float64 `json:"from"`       // seconds: the end of the warm-up
	Points    int     `json:"points"`     // samples the line is fitted to
	Slope     float64 `json:"slope"`      // unit per hour
	Mean      float64 `json:"mean"`       // of the fitted samples
	Drift     float64 `json:"drift"`      // |slope| * fitted span / mean: the relative change the line shows
	MaxDrift  float64 `json:"max_drift"`  // the criterion's bound on Drift
	Flat      bool    `json:"flat"`       // Drift <= MaxDrift
	NotJudged string  `json:"not_judged"` // why no line could be fitted ("" when judged)
}

// FitLine returns the least-squares line v = a + b*t of the samples at or
// after from (b per second), with the number of points used; ok is false
// with fewer than 3 points or no spread in time.
func FitLine(samples []Sample, from float64) (a, b float64, n int, ok bool) {
	var st, sv, stt, stv float64
	for _, s := range samples {
		if s.At < from || math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			continue
		}
		n++
		st += s.At
		sv += s.Value
		stt += s.At * s.At
		stv += s.At * s.Value
	}
	if n < 3 {
		return 0, 0, n, false
	}
	fn := float64(n)
	den := fn*stt - st*st
	if den <= 0 {
		return 0, 0, n, false
	}
	b = (fn*stv - st*sv) / den
	a = (sv - b*st) / fn
	return a, b, n, true
}

// Judge fits the line after warmUp and says whether the series is flat:
// the change the line shows over the fitted span is at most maxDrift of
// the series' mean (0.1: less than 10 % over the run after warm-up). A
// series that cannot be fitted is not judged, and so not flat.
func (s *SoakSeries) Judge(warmUp time.Duration, maxDrift float64) {
	from := warmUp.Seconds()
	t := &Trend{From: from, MaxDrift: maxDrift}
	s.Trend = t
	_, b, n, ok := FitLine(s.Samples, from)
	t.Points = n
	if !ok {
		t.NotJudged = fmt.Sprintf("%d samples after the warm-up of %s: need at least 3", n, warmUp)
		return
	}
	first, last := math.Inf(1), math.Inf(-1)
	var sum float64
	for _, p := range s.Samples {
		if p.At >= from && !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) {
			first, last = math.Min(first, p.At), math.Max(last, p.At)
			sum += p.Value
		}
	}
	t.Slope = b * 3600
	t.Mean = sum / float64(n)
	change := math.Abs(b) * (last - first)
	switch {
	case t.Mean > 0:
		t.Drift = change / t.Mean
	case change == 0:
		t.Drift = 0
	default:
		t.Drift = math.Inf(1)
	}
	t.Flat = t.Drift <= maxDrift
}
