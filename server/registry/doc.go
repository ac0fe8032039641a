// Package registry holds the loaded connector set and swaps it atomically on reload, so
// requests in flight keep the version they started with.
package registry
