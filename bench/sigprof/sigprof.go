// Package sigprof lets the ingest harness (bench/ingest) profile a system under test for
// exactly one phase of its load: when the environment variable Env names a file, SIGUSR1
// starts a CPU profile and SIGUSR2 stops it; the file appears, complete, once the profile
// is written (it is written to a temporary name first), which is what the harness waits
// for. The reference pipeline always
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
