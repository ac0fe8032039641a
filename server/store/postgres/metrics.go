package postgres

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's collectors; a nil *metrics records nothing.
type metrics struct {
	reg        prometheus.Registerer
	own        []prometheus.Collector // registered by this store, unregistered by Close
	batchSize  prometheus.Histogram
	commitTime prometheus.Histogram
	retries    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{reg: reg}
	m.batchSize = register(m, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookmap_store_commit_batch_size",
		Help:    "Write operations committed per transaction by the group commit.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 … 512
	}))
	m.commitTime = register(m, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookmap_store_commit_duration_seconds",
		Help:    "Time to run and commit (fsync) one write transaction of the group commit.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	}))
	m.retries = register(m, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hookmap_store_batch_retries_total",
		Help: "Group-commit batches rolled back because one write failed, and run again without it.",
	}))
	return m
}

// register registers c, or adopts the collector already registered under its name (a
// store reopened on the same registry).
func register[C prometheus.Collector](m *metrics, c C) C {
	if err := m.reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		return c // unregistered: still records, nobody scrapes it
	}
	m.own = append(m.own, c)
	return c
}

func (m *metrics) unregister() {
	if m == nil {
		return
	}
	for _, c := range m.own {
		m.reg.Unregister(c)
	}
}

func (m *metrics) commit(ops int, d time.Duration) {
	if m == nil {
		return
	}
	m.batchSize.Observe(float64(ops))
	m.commitTime.Observe(d.Seconds())
}

func (m *metrics) retry() {
	if m == nil {
		return
	}
	m.retries.Inc()
}
