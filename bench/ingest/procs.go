package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// build compiles hookmap and the pipeline from the module at repo into dir; with profile,
// hookmap can write a CPU profile on a signal (package sigprof).
func build(ctx context.Context, repo, dir string, profile bool) (hookmap, pipeline string, err error) {
	hookmap, pipeline = filepath.Join(dir, "hookmap"), filepath.Join(dir, "pipeline")
	tags := ""
	if profile {
		tags = "benchprofile"
	}
	for bin, pkg := range map[string]string{hookmap: "./server/cmd/hookmap", pipeline: "./bench/pipeline"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", tags, "-o", bin, pkg)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	}
	return hookmap, pipeline, nil
}

// moduleRoot is the folder of the go.mod of the working directory's module.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run it inside the hookmap module (go run ./bench/ingest from the repository)")
	}
	return filepath.Dir(mod), nil
}

// freeAddr is a loopback address with a port nothing listened on a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// proc is a subprocess under test.
type proc struct {
	name     string
	cmd      *exec.Cmd
	logs     *tail
	exited   chan struct{} // closed when it has exited
	waitErr  error         // set before exited is closed
	stopping atomic.Bool
}

// startProc starts bin with args and env added to the harness's environment. Its stdout lines go to lines (when not nil) and, with
// its stderr, to the tail kept for error messages.
func startProc(name, bin string, args, env []string, lines chan<- string) (*proc, error) {
	p := &proc{name: name, cmd: exec.Command(bin, args...), logs: &tail{}, exited: make(chan struct{})}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.SysProcAttr = sysProcAttr()
	p.cmd.Stderr = p.logs
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	var copied sync.WaitGroup
	copied.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			_, _ = fmt.Fprintln(p.logs, sc.Text())
			if lines != nil {
				select {
				case lines <- sc.Text():
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	})
	go func() {
		copied.Wait()
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// watch calls died with an error saying so when the process exits before stop.
func (p *proc) watch(died func(error)) {
	go func() {
		<-p.exited
		if !p.stopping.Load() {
			died(p.diedErr())
		}
	}()
}

func (p *proc) diedErr() error {
	return fmt.Errorf("%s exited (%v); its last output:\n%s", p.name, p.waitErr, p.logs.String())
}

// stop ends the process: SIGTERM, then SIGKILL when it has not exited within 10 s.
func (p *proc) stop() {
	p.stopping.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// tail keeps the last 16 KiB written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 16 << 10

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.buf))
}
