//go:build unix

// Command walwrite measures what SQLite's way of appending a commit to its WAL costs the
// kernel on this disk: a commit's frames written as SQLite writes them (two pwrite calls
// per frame, its 24-byte header then its page) and then fsynced, against the same bytes
// in one pwrite and fsynced, and against the frames without the fsync. It prints the wall
// time and the process's system CPU time per commit (see docs/performance.md).
//
//	go run ./bench/walwrite -dir /some/disk -frames 17 -page 2048 -commits 1000
//
// The file it writes (40 MiB, overwritten in turn like a WAL that is restarted) is
// removed at the end.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

const (
	frameHeader = 24
	fileSize    = 40 << 20
)

func main() {
	dir := flag.String("dir", os.TempDir(), "folder on the disk to measure")
	frames := flag.Int("frames", 17, "frames per commit (hookmap's commits held about 17 of 2 KiB under load)")
	page := flag.Int("page", 2048, "page size in bytes")
	commits := flag.Int("commits", 1000, "commits per mode")
	flag.Parse()
	if err := run(os.Stdout, *dir, *frames, *page, *commits); err != nil {
		fmt.Fprintln(os.Stderr, "walwrite:", err)
		os.Exit(1)
	}
}

// mode is one way of writing a commit.
type mode struct {
	name   string
	frames bool // two writes per frame (else one write of the commit)
	sync   bool
}

var modes = []mode{
	{"frames+fsync", true, true},
	{"one-write+fsync", false, true},
	{"frames", true, false},
}

func run(out io.Writer, dir string, frames, page, commits int) error {
	if frames < 1 || page < 512 || commits < 1 {
		return fmt.Errorf("frames, page and commits must be positive (page at least 512)")
	}
	path := filepath.Join(dir, "walwrite.tmp")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, fileSize)
	if _, err := f.WriteAt(buf, 0); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	commit := frames * (frameHeader + page)
	fmt.Fprintf(out, "walwrite: %d commits per mode of %d frames of %d B (%d B per commit)\n", commits, frames, page, commit)
	for _, m := range modes {
		var off int64
		var before, after syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &before); err != nil {
			return err
		}
		start := time.Now()
		for range commits {
			if off+int64(commit) > fileSize {
				off = 0
			}
			if m.frames {
				for range frames {
					if _, err := f.WriteAt(buf[:frameHeader], off); err != nil {
						return err
					}
					if _, err := f.WriteAt(buf[:page], off+frameHeader); err != nil {
						return err
					}
					off += int64(frameHeader + page)
				}
			} else {
				if _, err := f.WriteAt(buf[:commit], off); err != nil {
					return err
				}
				off += int64(commit)
			}
			if m.sync {
				if err := f.Sync(); err != nil {
					return err
				}
			}
		}
		wall := time.Since(start)
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &after); err != nil {
			return err
		}
		sys := time.Duration(after.Stime.Nano() - before.Stime.Nano())
		fmt.Fprintf(out, "mode=%s wall_per_commit=%.0fus system_cpu_per_commit=%.0fus\n", m.name,
			float64(wall.Microseconds())/float64(commits), float64(sys.Microseconds())/float64(commits))
	}
	return nil
}
