// Package e2e holds the end-to-end tests and benchmarks of the Go client
// (clients/go/hookmap): each starts the real hookmap in-process on loopback and drives
// it through the client. They live apart from the client so that a module importing
// the client never loads the server, not even for `go mod tidy` or `go test all`.
package e2e
