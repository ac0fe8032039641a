// Package jsonapi serves every hookmap.v1 RPC as JSON over HTTP, under /api/ on the HTTP
// port, by transcoding to the very gRPC server that serves the gRPC port: the same
// handlers and the same interceptors (auth, recovery, metrics, logging) answer both.
//
// The transcoder is connectrpc's vanguard-go. A call is the Connect protocol:
//
//	POST /api/hookmap.v1.ConnectorService/ListConnectors
//	Content-Type: application/json
//	Authorization: Bearer <token>
//
//	{}
//
// answers 200 with the response message as JSON (proto3 JSON mapping, lowerCamelCase
// names, every field present), or an HTTP error status with a JSON body
// {"code": "invalid_argument", "message": "...", "details": [{"type":
// "google.rpc.BadRequest", "value": "<base64>", "debug": {"fieldViolations": [...]}}]}.
// Server streams (EventService/StreamEvents) use the Connect streaming protocol
// (Content-Type: application/connect+json, each message in a 5-byte envelope); such a
// request is exempt from the HTTP server's read and write timeouts, and ends when the
// client goes away or the server shuts down. gRPC-Web clients work too.
//
// A request whose Origin header names another host than the one it was sent to is
// refused (403): the API is for same-origin pages (the console), curl and servers.
package jsonapi
