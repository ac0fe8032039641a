//go:build benchprofile

package main

import "github.com/hookmap/hookmap/bench/sigprof"

// Built with -tags benchprofile (bench/ingest -cpuprofile), hookmap can be profiled for
// one phase of a benchmark's load (package sigprof).
func init() { sigprof.Install() }
