// Package api implements hookmap's gRPC services (package hookmap.v1) on top of core, and
// the interceptor chain: recovery, request id, logging, metrics, auth.
package api
