package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hookmap/hookmap/server/store"
)

// Metrics are the service's collectors.
type Metrics struct {
	Registry        *prometheus.Registry
	Deliveries      *prometheus.CounterVec
	VerifyFailures  *prometheus.CounterVec
	ReceiverLatency *prometheus.HistogramVec
	ReceiverUnknown prometheus.Counter
	GRPCRequests    *prometheus.CounterVec
	GRPCLatency     *prometheus.HistogramVec
	StreamsOpen     prometheus.Gauge
	EventsStreamed  prometheus.Counter
	Renewals        *prometheus.CounterVec
	RenewalsWaiting prometheus.Gauge
	EvalCost        *prometheus.HistogramVec
	EvalLimits      *prometheus.CounterVec
	FetchRuns       *prometheus.CounterVec
}

// New registers hookmap's metrics (and the Go and process collectors) on a new registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookmap_receiver_deliveries_total", Help: "Requests received on hook URLs, by kind (subscription, global) and outcome.",
		}, []string{"kind", "outcome"}),
		VerifyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookmap_receiver_verify_failures_total", Help: "Signature verification failures, by scheme and reason.",
		}, []string{"scheme", "reason"}),
		ReceiverLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hookmap_receiver_request_duration_seconds", Help: "Time from request start to reply on hook URLs.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"code"}),
		ReceiverUnknown: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookmap_receiver_unknown_total", Help: "Requests to hook URLs whose id is unknown (404).",
		}),
		GRPCRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookmap_grpc_requests_total", Help: "gRPC calls by method and status code.",
		}, []string{"method", "code"}),
		GRPCLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hookmap_grpc_request_duration_seconds", Help: "gRPC unary call latency by method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method"}),
		StreamsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookmap_event_streams_open", Help: "Open StreamEvents streams.",
		}),
		EventsStreamed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookmap_events_streamed_total", Help: "Events sent on StreamEvents streams.",
		}),
		Renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookmap_credential_renewals_total",
			Help: "Token requests renewing a connection's credentials, by grant (refreshToken, clientCredentials) and result (renewed, failed, revoked).",
		}, []string{"grant", "result"}),
		RenewalsWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookmap_credential_renewals_waiting", Help: "Method runs waiting for a renewal of their connection's credentials.",
		}),
		EvalCost: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hookmap_eval_cel_cost", Help: "CEL cost charged by a delivery's handles (the expressions tracked at run time; the limit is 1,000,000 per expression), by kind (subscription, global).",
			Buckets: []float64{10, 100, 1_000, 10_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000},
		}, []string{"kind"}),
		EvalLimits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookmap_eval_limit_exceeded_total", Help: "Deliveries whose handles reached an evaluation limit, by kind and limit (cost: the CEL cost limit; time: --eval-timeout).",
		}, []string{"kind", "limit"}),
		FetchRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookmap_fetch_runs_total", Help: "Runs of events' fetch methods, by outcome (ok, retry, failed: given up, lease_lost).",
		}, []string{"outcome"}),
	}
	r.MustRegister(m.Deliveries, m.VerifyFailures, m.ReceiverLatency, m.ReceiverUnknown, m.GRPCRequests,
		m.GRPCLatency, m.StreamsOpen, m.EventsStreamed, m.Renewals, m.RenewalsWaiting, m.EvalCost, m.EvalLimits, m.FetchRuns,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Pre-create every kind/outcome series so dashboards and alerts see zeros
	// from the start instead of a missing metric.
	for _, kind := range []string{"subscription", "global"} {
		for _, outcome := range []string{store.OutcomeOK, store.OutcomeRejected, store.OutcomeFailed, store.OutcomeUnmatched, store.OutcomeDuplicate} {
			m.Deliveries.WithLabelValues(kind, outcome)
		}
		for _, limit := range []string{"cost", "time"} {
			m.EvalLimits.WithLabelValues(kind, limit)
		}
	}
	for _, outcome := range []string{"ok", "retry", "failed", "lease_lost"} {
		m.FetchRuns.WithLabelValues(outcome)
	}
	return m
}

// FetchRun counts a run of a fetch method.
func (m *Metrics) FetchRun(outcome string) {
	if m != nil {
		m.FetchRuns.WithLabelValues(outcome).Inc()
	}
}

// Delivery counts a handled delivery.
func (m *Metrics) Delivery(kind, outcome string) {
	if m != nil {
		m.Deliveries.WithLabelValues(kind, outcome).Inc()
	}
}

// CredentialRenewal counts a token request that renewed (or failed to renew) a
// connection's credentials.
func (m *Metrics) CredentialRenewal(grant, result string) {
	if m != nil {
		m.Renewals.WithLabelValues(grant, result).Inc()
	}
}

// RenewalWaiting adds delta to the method runs waiting for a renewal.
func (m *Metrics) RenewalWaiting(delta float64) {
	if m != nil {
		m.RenewalsWaiting.Add(delta)
	}
}

// VerifyFailure counts a failed signature check.
func (m *Metrics) VerifyFailure(scheme, reason string) {
	if m != nil {
		m.VerifyFailures.WithLabelValues(scheme, reason).Inc()
	}
}

// Evaluation observes the CEL cost of a delivery's handles and counts the evaluation limit
// they reached, if any ("cost" or "time").
func (m *Metrics) Evaluation(kind string, cost uint64, limit string) {
	if m == nil {
		return
	}
	m.EvalCost.WithLabelValues(kind).Observe(float64(cost))
	if limit != "" {
		m.EvalLimits.WithLabelValues(kind, limit).Inc()
	}
}
