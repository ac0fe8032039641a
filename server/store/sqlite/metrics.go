package sqlite

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookmap/hookmap/server/store/storemetrics"
)

// metrics are the store's collectors: the group commit's, and the WAL checkpoints'. With
// no registerer they record nothing.
type metrics struct {
	*storemetrics.Group
	ckTime   *prometheus.HistogramVec
	walBytes prometheus.Gauge
	walWrite prometheus.Counter
	// cacheLookups counts the reads the caches served (hit) or sent to the database (miss);
	// cache "events" counts ListEvents, a hit being one the tail served alone.
	cacheLookups *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{Group: storemetrics.New(reg)}
	if m.Group == nil {
		return m
	}
	m.ckTime = storemetrics.Register(m.Group, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hookmap_store_checkpoint_duration_seconds",
		Help:    "Time of one SQLite WAL checkpoint, by mode (PASSIVE, TRUNCATE).",
		Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
	}, []string{"mode"}))
	m.walBytes = storemetrics.Register(m.Group, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hookmap_store_wal_bytes",
		Help: "Size of the SQLite WAL file at the last checkpoint.",
	}))
	m.walWrite = storemetrics.Register(m.Group, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hookmap_store_wal_written_bytes_total",
		Help: "Bytes the writer appended to the SQLite WAL (frames of committed transactions, header included).",
	}))
	m.cacheLookups = storemetrics.Register(m.Group, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookmap_store_cache_lookups_total",
		Help: "Reads of subscriptions, connections, connector parameters and events (ListEvents of the newest events), by cache and result: hit (served from memory) or miss (read from the database).",
	}, []string{"cache", "result"}))
	return m
}

// walWritten records frames pages appended to the WAL, each a page and its 24-byte header.
func (m *metrics) walWritten(frames, pageSize int) {
	if m.walWrite == nil || frames <= 0 {
		return
	}
	m.walWrite.Add(float64(frames * (pageSize + walFrameHeader)))
}

// walFrameHeader is the size of a WAL frame's header.
const walFrameHeader = 24

func (m *metrics) checkpoint(mode string, d time.Duration) {
	if m.ckTime == nil {
		return
	}
	m.ckTime.WithLabelValues(mode).Observe(d.Seconds())
}

func (m *metrics) wal(size int64) {
	if m.walBytes == nil {
		return
	}
	m.walBytes.Set(float64(size))
}
