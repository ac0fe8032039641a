package outgoing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hookmap/hookmap/server/store"
)

// Attempt is the outcome of one Deliver: Status 0 when the endpoint was not reached, and
// Error set for anything but a 2xx answer.
type Attempt struct {
	Status   int
	Error    string
	Duration time.Duration
}

// OK reports a 2xx answer: the endpoint acknowledged the message.
func (a Attempt) OK() bool { return a.Status >= 200 && a.Status < 300 }

// Gone reports a 410 answer: the endpoint asks not to be sent anything again.
func (a Attempt) Gone() bool { return a.Status == http.StatusGone }

// ErrNotDeliverable is a webhook Deliver cannot use (see DeliverableProblem).
var ErrNotDeliverable = errors.New("the webhook cannot receive events")

// DeliverableProblem says why events cannot be pushed to w, "" when they can: they go
// as a signed POST of JSON to one endpoint (no chain).
func DeliverableProblem(w *store.OutgoingWebhook) string {
	switch {
	case w.Method != http.MethodPost:
		return fmt.Sprintf("webhook %q uses %s; events are POSTed", w.ID, w.Method)
	case w.PayloadEncoding != store.EncodingJSON:
		return fmt.Sprintf("webhook %q sends %s; events are JSON", w.ID, w.PayloadEncoding)
	case len(w.SigningSecret) == 0:
		return fmt.Sprintf("webhook %q has no signing_secret; events are always signed", w.ID)
	case w.Next != nil:
		return fmt.Sprintf("webhook %q continues into a chain; a destination sends to one endpoint", w.ID)
	}
	return ""
}

// Deliver POSTs body (JSON) to w once, as a destination does for each attempt of an
// event: the registered URL and headers, the registration's content type (default
// application/json), Standard Webhooks headers with webhook-id msgID, the SSRF-guarded
// client, the registration's timeout for the attempt and the response size limit. It
// records no invocation (the destination keeps the event's state) and never retries:
// the destination schedules retries durably. A webhook with a DeliverableProblem is
// ErrNotDeliverable.
func (s *Sender) Deliver(ctx context.Context, w *store.OutgoingWebhook, msgID string, body []byte) (Attempt, error) {
	if p := DeliverableProblem(w); p != "" {
		return Attempt{}, fmt.Errorf("%s: %w", p, ErrNotDeliverable)
	}
	headers, err := s.openHeaders(w)
	if err != nil {
		return Attempt{}, err
	}
	hdr := http.Header{}
	for name, val := range headers {
		hdr.Set(name, val)
	}
	if hdr.Get("User-Agent") == "" {
		hdr.Set("User-Agent", s.cfg.UserAgent)
	}
	p := &prepared{w: w, url: w.URL, headers: hdr, body: body, contentType: w.ContentType}
	if p.contentType == "" {
		p.contentType = defaultContentType[store.EncodingJSON]
	}
	if p.secret, err = s.openSecret(w); err != nil {
		return Attempt{}, err
	}
	if _, err := signingKey(p.secret); err != nil {
		return Attempt{}, fmt.Errorf("outgoing: webhook %q: stored signing secret: %w", w.ID, err)
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errTimeout)
	defer cancel()
	client := s.direct
	if w.FollowRedirects {
		client = s.follows
		ctx = context.WithValue(ctx, registeredKey{}, w.HeaderNames)
	}
	start := time.Now()
	o := s.attempt(ctx, client, p, msgID, timeout)
	a := Attempt{Status: o.status, Error: o.msg, Duration: time.Since(start)}
	if a.Error == "" && !a.OK() {
		a.Error = "endpoint answered " + statusText(o.status) // a 3xx not followed
	}
	return a, nil
}
