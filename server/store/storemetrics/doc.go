// Package storemetrics holds the Prometheus collectors every store implementation's group
// commit records (batch size, commit time, retried batches), and the registration that
// adopts the collectors of a store reopened on the same registry.
package storemetrics
