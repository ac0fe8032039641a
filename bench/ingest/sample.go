package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

// memory is a process's resident set size now (VmRSS) and its peak (VmHWM), in bytes,
// from /proc/PID/status.
func memory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, value, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		var into *int64
		switch string(name) {
		case "VmRSS":
			into = &rss
		case "VmHWM":
			into = &hwm
		default:
			continue
		}
		kb, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(value), []byte(" kB"))), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, name, err)
		}
		*into = kb << 10
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS or VmHWM", pid)
	}
	return rss, hwm, nil
}

// cpuTime is the CPU time a process has used so far (user and system), from
// /proc/PID/stat, whose utime and stime are in clock ticks of 1/100 s (USER_HZ, 100 on
// Linux).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: count fields after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state): utime is field 14, stime 15
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// resetPeak resets the process's VmHWM to its current RSS (Linux 4.0+).
func resetPeak(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// fileSize is the size of path, 0 when it does not exist.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// sampler samples a process's RSS and its WAL file's size every 100 ms, keeping the
// peaks since the last mark.
type sampler struct {
	pid  int
	wal  string
	stop chan struct{}
	done chan struct{}

	mu          sync.Mutex
	rssMax      int64 // highest VmRSS sampled since the mark
	walPeak     int64 // largest WAL file sampled since the mark
	peakReset   bool  // whether VmHWM was reset at the mark
	rss, walNow int64 // the latest samples
}

// peaks are a phase's peaks.
type peaks struct {
	RSSHWM    int64 // VmHWM at the phase's end (since its start when PeakReset)
	RSSMax    int64 // highest VmRSS sampled
	WALPeak   int64 // largest WAL file sampled
	PeakReset bool
}

func newSampler(pid int, wal string) *sampler {
	s := &sampler{pid: pid, wal: wal, stop: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *sampler) close() {
	close(s.stop)
	<-s.done
}

func (s *sampler) sample() {
	rss, _, err := memory(s.pid)
	wal := fileSize(s.wal)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.rss = rss
		s.rssMax = max(s.rssMax, rss)
	}
	s.walNow = wal
	s.walPeak = max(s.walPeak, wal)
}

// mark starts a phase: the peaks start again from now.
func (s *sampler) mark() {
	reset := resetPeak(s.pid)
	s.mu.Lock()
	s.rssMax, s.walPeak, s.peakReset = 0, 0, reset
	s.mu.Unlock()
	s.sample()
}

// peaks are the peaks since the mark, with a last sample taken now.
func (s *sampler) peaks() peaks {
	s.sample()
	_, hwm, _ := memory(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	return peaks{RSSHWM: hwm, RSSMax: s.rssMax, WALPeak: s.walPeak, PeakReset: s.peakReset}
}

// latest is the latest sample: RSS and WAL file size.
func (s *sampler) latest() (rss, wal int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rss, s.walNow
}

// recorder collects durations; its snapshots are exact percentiles. Each snapshot sorts
// only what was added since the last one and merges it into the sorted rest, so a long
// soak can take one every few seconds.
type recorder struct {
	mu      sync.Mutex // guards pending
	pending []time.Duration
	snap    sync.Mutex // guards sorted
	sorted  []time.Duration
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	r.pending = append(r.pending, d)
	r.mu.Unlock()
}

// dist summarises a set of durations.
type dist struct {
	N             int
	P50, P99, Max time.Duration
}

// snapshot summarises everything added so far (p50 and p99 by nearest rank).
func (r *recorder) snapshot() dist {
	r.snap.Lock()
	defer r.snap.Unlock()
	r.mu.Lock()
	pending := r.pending
	r.pending = nil
	r.mu.Unlock()
	slices.Sort(pending)
	merged := make([]time.Duration, 0, len(r.sorted)+len(pending))
	i, j := 0, 0
	for i < len(r.sorted) && j < len(pending) {
		if r.sorted[i] <= pending[j] {
			merged = append(merged, r.sorted[i])
			i++
		} else {
			merged = append(merged, pending[j])
			j++
		}
	}
	merged = append(append(merged, r.sorted[i:]...), pending[j:]...)
	r.sorted = merged
	n := len(merged)
	if n == 0 {
		return dist{}
	}
	at := func(q float64) time.Duration { return merged[max(0, int(math.Ceil(float64(n)*q))-1)] }
	return dist{N: n, P50: at(0.50), P99: at(0.99), Max: merged[n-1]}
}
