package results_test

import (
	"math"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

func TestFitLine(t *testing.T) {
	t.Parallel()
	var s []results.Sample
	for i := range 10 {
		s = append(s, results.Sample{At: float64(i * 10), Value: 5 + 2*float64(i*10)})
	}
	a, b, n, ok := results.FitLine(s, 0)
	if !ok || n != 10 || math.Abs(a-5) > 1e-9 || math.Abs(b-2) > 1e-9 {
		t.Fatalf("FitLine = %v + %v t over %d (ok %v), want 5 + 2 t over 10", a, b, n, ok)
	}
	if _, _, n, ok := results.FitLine(s, 75); ok || n != 2 {
		t.Fatalf("two points after 75 s: n %d ok %v, want not fitted", n, ok)
	}
}

// A series growing 50 % over the hour after warm-up is not flat; the same
// with noise around a constant is.
func TestJudge(t *testing.T) {
	t.Parallel()
	grow := results.SoakSeries{Name: "rss", Flat: true}
	flat := results.SoakSeries{Name: "goroutines", Flat: true}
	for i := 0; i <= 360; i++ {
		at := float64(i * 10)
		grow.Samples = append(grow.Samples, results.Sample{At: at, Value: 100 + 50*at/3600})
		flat.Samples = append(flat.Samples, results.Sample{At: at, Value: 100 + float64(i%3) - 1})
	}
	// The warm-up is left out: a jump in it changes nothing.
	flat.Samples[0].Value = 10
	grow.Judge(5*time.Minute, 0.1)
	flat.Judge(5*time.Minute, 0.1)
	if grow.Trend.Flat || math.Abs(grow.Trend.Slope-50) > 1e-6 {
		t.Errorf("growing series: %+v, want slope 50/h, not flat", *grow.Trend)
	}
	if !flat.Trend.Flat || flat.Trend.Drift > 0.01 {
		t.Errorf("flat series: %+v, want flat", *flat.Trend)
	}
	short := results.SoakSeries{Samples: []results.Sample{{At: 400, Value: 1}}}
	short.Judge(5*time.Minute, 0.1)
	if short.Trend.Flat || short.Trend.NotJudged == "" {
		t.Errorf("one sample: %+v, want not judged", *short.Trend)
	}
}
