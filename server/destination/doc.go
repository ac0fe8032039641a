// Package destination pushes stored events to HTTP endpoints: a destination sends the
// events of a filter to a registered outgoing webhook, for services that cannot hold a
// gRPC stream.
//
// A destination is a durable consumer. Its worker reads the events after its cursor and
// queues the matching ones (store.DestinationStore keeps the queue and the cursor in one
// transaction), then POSTs each queued event through the outgoing Sender — SSRF guard,
// timeout, response size limit and sealed secrets included — signed with Standard
// Webhooks (webhook-id is the event id). An event is done when the endpoint answers 2xx.
// A failure is retried with exponential backoff and jitter until the destination's retry
// window has passed since its first attempt, then parked as FAILED, visible and retried
// on request. A 410 Gone answer disables the destination.
//
// Ordering: only the lowest queued event of each subscription may be sent (the
// subscription's head), so events of one subscription reach the endpoint in seq order, the
// next one only after the previous one was acknowledged or parked; subscriptions do not
// wait for each other. Every state change is stored before the next step, so a crash or a
// restart resumes where the destination was: an event whose 2xx answer was not yet
// recorded is sent again, with the same webhook-id.
//
// One process sends for a destination at a time: its worker holds a lease in the store,
// renewed while it runs and released when it stops.
package destination
