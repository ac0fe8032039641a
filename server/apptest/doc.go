// Package apptest starts a real hookmap (server/app) on random 127.0.0.1 ports with a
// fresh SQLite store, and gives tests real gRPC clients and the receiver's base URL. It
// is used by the end-to-end tests of the server and of the bundled connectors.
package apptest
