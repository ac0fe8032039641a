// Package outgoing sends hookmap's outgoing webhooks: third-party endpoints a workspace
// registers once (URL, method, headers, signing secret) and its clients then trigger by
// id, without ever seeing the URL or the credentials.
//
// A Sender validates registrations and stores them through a store.OutgoingStore with
// the header values and the signing secret sealed by a secrets.Box (bound to the
// workspace and webhook id). Trigger checks a call against its registration, builds the
// request (JSON, decoded base64 bytes, text or a form), signs it with Standard Webhooks
// headers when a secret is set, sends it through the SSRF-guarded client with retries
// (exponential backoff with jitter, Retry-After honoured, all within the registration's
// timeout), and writes an invocation record whatever happened. An endpoint that fails or
// cannot be reached is a Result with Error set, never a Go error: Trigger returns an
// error only for an unknown webhook (store.ErrNotFound), a call that does not fit the
// registration (*InvalidError) or an internal failure.
//
// Nothing here logs or records a URL, a header value or the secret.
package outgoing
