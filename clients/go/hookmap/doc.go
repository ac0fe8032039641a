// Package hookmap is the Go client of hookmap: typed access to every hookmap.v1 gRPC
// service, iterators over every List RPC, and Consume, a resilient event consumer.
//
// Dial prepares a connection with a token, a workspace, TLS (the default) or plaintext,
// and a retry policy for the unary calls that are safe to retry:
//
//	c, err := hookmap.Dial(ctx, "127.0.0.1:7070",
//		hookmap.WithInsecure(),         // hookmap serve speaks plaintext gRPC
//		hookmap.WithToken(apiKey),      // authorization: Bearer …
//		hookmap.WithWorkspace("acme"))  // x-hookmap-workspace, for the admin token
//	defer c.Close()
//
// Consume streams a named durable consumer's events from its committed cursor, calls the
// handler for each in seq order, acks in batches after the handler succeeds, and
// reconnects with backoff across server restarts and network errors:
//
//	err = c.Consume(ctx, "billing", func(ctx context.Context, ev *hookmap.Event) error {
//		var order struct{ ID json.Number `json:"id"` }
//		return ev.Decode(&order) // the record's JSON text: integers exact
//	})
//
// Delivery is at least once and in order: an event the handler finished after the last
// committed ack may be handled again after a reconnect or a restart of the consumer; no
// other event is. Consume returns nil or ctx's error when ctx ends (pending acks flushed
// first), and ErrReplaced when a newer stream of the same consumer took over.
//
// The generated messages are in github.com/hookmap/hookmap/proto/gen/hookmap/v1. Errors
// of calls are gRPC statuses, wrapped or not: status.Code(err) and FieldViolations(err)
// read them.
//
// The package imports neither the server nor its storage: a service that imports it
// builds gRPC, protobuf and the generated hookmap.v1 code only.
package hookmap
