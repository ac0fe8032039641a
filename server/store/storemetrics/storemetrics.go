package storemetrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Group is a store's group commit collectors; a nil *Group records nothing.
type Group struct {
	reg        prometheus.Registerer
	own        []prometheus.Collector // registered by this store, unregistered by Unregister
	batchSize  prometheus.Histogram
	commitTime prometheus.Histogram
	retries    prometheus.Counter
}

// New registers the group commit collectors on reg; nil when reg is nil.
func New(reg prometheus.Registerer) *Group {
	if reg == nil {
		return nil
	}
	m := &Group{reg: reg}
	m.batchSize = Register(m, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookmap_store_commit_batch_size",
		Help:    "Write operations committed per transaction by the group commit.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 … 512
	}))
	m.commitTime = Register(m, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookmap_store_commit_duration_seconds",
		Help:    "Time to run and commit (fsync) one write transaction of the group commit.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	}))
	m.retries = Register(m, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hookmap_store_batch_retries_total",
		Help: "Group-commit batches rolled back because one write failed, and run again without it.",
	}))
	return m
}

// Register registers c on m's registry, to be unregistered by m.Unregister, or adopts the
// collector already registered under its name (a store reopened on the same registry).
func Register[C prometheus.Collector](m *Group, c C) C {
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

// Unregister unregisters the collectors m registered (the store closes).
func (m *Group) Unregister() {
	if m == nil {
		return
	}
	for _, c := range m.own {
		m.reg.Unregister(c)
	}
}

// Commit records one committed transaction of ops write operations that took d.
func (m *Group) Commit(ops int, d time.Duration) {
	if m == nil {
		return
	}
	m.batchSize.Observe(float64(ops))
	m.commitTime.Observe(d.Seconds())
}

// Retry records a batch rolled back and run again without its failed write.
func (m *Group) Retry() {
	if m == nil {
		return
	}
	m.retries.Inc()
}
