// Package metrics defines hookmap's Prometheus metrics on a registry of its own.
package metrics
