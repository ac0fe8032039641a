// Package app assembles hookmap from its parts (store, registry, core, gRPC services,
// receiver) and runs it with an orderly shutdown. server/cmd/hookmap and end-to-end tests
// both start the service through it.
package app
