package sqlite

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func newTestID(i int) string { return fmt.Sprintf("id-%04d", i) }

// histogramCounts returns the sample count and sum of the histogram series of the metric
// family name, one entry per series.
func histogramCounts(t *testing.T, reg *prometheus.Registry, name string) (counts []uint64, sums []float64) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			counts = append(counts, m.GetHistogram().GetSampleCount())
			sums = append(sums, m.GetHistogram().GetSampleSum())
		}
	}
	return counts, sums
}
