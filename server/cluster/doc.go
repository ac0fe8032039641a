// Package cluster keeps a process's hub in step with the other hookmap processes
// (replicas) sharing its store: what they commit wakes this process's streams, and a
// stream a consumer opened on another replica ends this process's older one. Changes come
// pushed by the store (store.Shared.Watch, LISTEN/NOTIFY on Postgres); a slow poll is the
// fallback for the ones that can be lost (a replica that died between its commit and its
// notification, a reconnecting listener).
package cluster
