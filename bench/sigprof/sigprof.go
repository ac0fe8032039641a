// Package sigprof lets the ingest harness (bench/ingest) profile a system under test for
// exactly one phase of its load: when the environment variable Env names a file, SIGUSR1
// starts a CPU profile and SIGUSR2 stops it; the file appears, complete, once the profile
// is written (it is written to a temporary name first), which is what the harness waits
// for. Beside it, the allocations profile at SIGUSR1 (file.allocs-start) and at SIGUSR2
// (file.allocs), written before the CPU profile appears: `go tool pprof -sample_index
// alloc_space -diff_base file.allocs-start file.allocs` shows what the phase allocated. The reference pipeline always
// installs it; hookmap only when built with the tag benchprofile, so that no production
// binary starts a profile on a signal.
package sigprof

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

// Env names the file the profile goes to.
const Env = "BENCH_CPUPROFILE"

// Install starts the signal handling when Env is set; otherwise it does nothing.
func Install() {
	path := os.Getenv(Env)
	if path == "" {
		return
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		var f *os.File
		for s := range sig {
			switch {
			case s == syscall.SIGUSR1 && f == nil:
				writeAllocs(path + ".allocs-start")
				var err error
				if f, err = os.Create(path + ".tmp"); err != nil {
					fmt.Fprintln(os.Stderr, "sigprof:", err)
					continue
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					fmt.Fprintln(os.Stderr, "sigprof:", err)
					_ = f.Close()
					f = nil
				}
			case s == syscall.SIGUSR2 && f != nil:
				pprof.StopCPUProfile()
				writeAllocs(path + ".allocs")
				err := f.Close()
				if err == nil {
					err = os.Rename(path+".tmp", path)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "sigprof:", err)
				}
				f = nil
			}
		}
	}()
}

// writeAllocs writes the allocations profile (every sampled allocation since the start)
// to path.
func writeAllocs(path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigprof:", err)
	}
}
