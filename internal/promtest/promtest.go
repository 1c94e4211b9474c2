// Package promtest reads a Prometheus /metrics answer for tests: it parses
// the text exposition format (so tests check series and values, not
// strings) and looks series up by name and labels.
package promtest

import (
	"io"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// Families are the metric families of one scrape, by name.
type Families map[string]*dto.MetricFamily

// Parse parses a text exposition.
func Parse(tb testing.TB, r io.Reader) Families {
	tb.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	require.NoError(tb, err)
	return fams
}

// Scrape GETs url (a /metrics endpoint) and parses the answer.
func Scrape(tb testing.TB, url string) Families {
	tb.Helper()
	res, err := http.Get(url) //nolint:noctx // a test's loopback GET
	require.NoError(tb, err)
	defer func() { _ = res.Body.Close() }()
	require.Equal(tb, http.StatusOK, res.StatusCode)
	return Parse(tb, res.Body)
}

// Find returns the series of family name whose labels include labels
// (name=value pairs), or nil.
func (f Families) Find(name string, labels ...string) *dto.Metric {
	fam, ok := f[name]
	if !ok {
		return nil
	}
	for _, m := range fam.GetMetric() {
		if hasLabels(m, labels) {
			return m
		}
	}
	return nil
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Value returns the value of a counter, gauge or untyped series (failing
// the test when it is missing), and the sample count of a histogram.
func (f Families) Value(tb testing.TB, name string, labels ...string) float64 {
	tb.Helper()
	m := f.Find(name, labels...)
	require.NotNil(tb, m, "series %s%v", name, labels)
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	default:
		return m.GetUntyped().GetValue()
	}
}

// Histogram returns a histogram series (failing the test when missing).
func (f Families) Histogram(tb testing.TB, name string, labels ...string) *dto.Histogram {
	tb.Helper()
	m := f.Find(name, labels...)
	require.NotNil(tb, m, "series %s%v", name, labels)
	require.NotNil(tb, m.Histogram, "%s is a histogram", name)
	return m.GetHistogram()
}

// Type returns the type of family name.
func (f Families) Type(name string) dto.MetricType { return f[name].GetType() }

// LabelValues returns every label value of every series.
func (f Families) LabelValues() []string {
	var out []string
	for _, fam := range f {
		for _, m := range fam.GetMetric() {
			for _, lp := range m.GetLabel() {
				out = append(out, lp.GetValue())
			}
		}
	}
	return out
}
