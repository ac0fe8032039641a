// Package conntest runs connector test files: `hookmap test DIR...`.
//
// A test file (connectors/<key>/tests/*.test.yml) states, in YAML, a connection and
// subscription, then steps: subscribe, deliver, refresh, unsubscribe, reconcile. For each
// step it lists the requests the connector must send to the app, with the answers a fake
// app gives (and, for apps that call the new webhook during the create call, that call),
// and what must come out: the subscription's state, the receiver's answer, the events
// stored, the error. docs/connectors.md ("Test your connector") describes the format.
//
// The runner drives the server's own code: the core package (CreateSubscription,
// DeleteSubscription, RefreshSubscription, ReconcileWebhooks) and the receiver's HTTP
// handler, over a SQLite store in a temporary folder, with the fake app as the outbound
// HTTP client. Nothing leaves the process: a test that passes means the server would do
// the same with an app that answers the same. Failures are reported at the line of the
// test file that expected something else: "file:line:col: expected …, got …".
package conntest
