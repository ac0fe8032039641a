// Package promtext reads a Prometheus text exposition, as hookmap serves it on /metrics, for
// the load harnesses.
package promtext

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are the metric families of one exposition, by name.
type Families map[string]*dto.MetricFamily

// Get reads the exposition at url.
func Get(ctx context.Context, url string) (Families, error) {
	b, err := Body(ctx, url)
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return fams, nil
}

// Body GETs url and returns its body; an answer other than 200 is an error.
func Body(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}

// Value is the sum over its series of a counter's, gauge's or untyped metric's values, and
// whether the exposition has the family.
func (f Families) Value(name string) (float64, bool) {
	mf, ok := f[name]
	if !ok {
		return 0, false
	}
	var v float64
	for _, m := range mf.GetMetric() {
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	return v, true
}

// Histogram is the sample count and sum of a histogram, over its series.
func (f Families) Histogram(name string) (count, sum float64) {
	for _, m := range f[name].GetMetric() {
		count += float64(m.GetHistogram().GetSampleCount())
		sum += m.GetHistogram().GetSampleSum()
	}
	return count, sum
}
