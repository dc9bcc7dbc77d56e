package promtext

import (
	"bytes"
	"strings"
	"testing"
)

func TestSeries(t *testing.T) {
	tests := []struct {
		labels []string
		want   string
	}{
		{nil, `f`},
		{[]string{"a", "x"}, `f{a="x"}`},
		{[]string{"a", "x", "b", "GET /v1/runs/{id}"}, `f{a="x",b="GET /v1/runs/{id}"}`},
		{[]string{"a", "q\"b\\s\nn"}, `f{a="q\"b\\s\nn"}`},
	}
	for _, tt := range tests {
		if got := Series("f", tt.labels...); got != tt.want {
			t.Errorf("Series(f, %q) = %s, want %s", tt.labels, got, tt.want)
		}
	}
}

// TestPageText: families sorted by name, each under its HELP and TYPE
// lines, histograms with Prometheus' le buckets, none without a series,
// then Go's and the process's metrics.
func TestPageText(t *testing.T) {
	var p Page
	p.Family("z_total", Counter, "Zs, by kind.").NewCounter(Series("z_total", "kind", `a"b`)).Add(3)
	p.Family("a_seconds", Histogram, "Time of a,\nin seconds.").
		NewPrometheusHistogramExt(Series("a_seconds", "route", "GET /x"), []float64{0.5, 1}).Update(0.75)
	p.Family("m_now", Gauge, "Ms now.").NewGauge("m_now", func() float64 { return 2 })
	p.Family("n_total", Counter, "Ns, none yet.")
	var b bytes.Buffer
	p.Write(&b)
	want := `# HELP a_seconds Time of a,\nin seconds.
# TYPE a_seconds histogram
a_seconds_bucket{route="GET /x",le="0.5"} 0
a_seconds_bucket{route="GET /x",le="1"} 1
a_seconds_bucket{route="GET /x",le="+Inf"} 1
a_seconds_sum{route="GET /x"} 0.75
a_seconds_count{route="GET /x"} 1
# HELP m_now Ms now.
# TYPE m_now gauge
m_now 2
# HELP z_total Zs, by kind.
# TYPE z_total counter
z_total{kind="a\"b"} 3
`
	if got := b.String(); !strings.HasPrefix(got, want) {
		t.Fatalf("page starts\n%s\nwant\n%s", got[:min(len(got), len(want)+200)], want)
	}
	for _, name := range []string{"\ngo_goroutines ", "\nprocess_cpu_seconds_total ", "\nprocess_resident_memory_bytes ", "\nprocess_open_fds "} {
		if !strings.Contains(b.String(), name) {
			t.Errorf("no %s", strings.TrimSpace(name))
		}
	}
}

func TestFamilyTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	var p Page
	p.Family("x", Gauge, "X.")
	p.Family("x", Gauge, "X.")
}
