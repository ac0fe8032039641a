package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// The crash test re-executes the test binary as a child that commits deliveries in a loop
// and prints each acknowledged seq; the parent kills it with SIGKILL mid-stream, reopens
// the database and checks that every acknowledged seq is there.

const crashEnv = "HOOKMAP_SQLITE_CRASH_CHILD"

func crashChildDir() string { return os.Getenv(crashEnv) }

// crashChild is the child's main: it never returns.
func crashChild(dir string) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(dir, "hookmap.db"), Options{CheckpointInterval: 5 * time.Millisecond, WALTruncateSize: 256 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	err = s.CreateWorkspace(ctx, &store.Workspace{ID: "w", Name: "w"})
	if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		fmt.Fprintln(os.Stderr, "workspace:", err)
		os.Exit(2)
	}
	var mu sync.Mutex // one line per write(2), never interleaved
	deadline := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			record := map[string]any{"payload": string(make([]byte, 512))}
			for time.Now().Before(deadline) {
				d := &store.Delivery{ID: uuid.NewString(), WorkspaceID: "w", SubscriptionID: "s", ReceiveTime: time.Now(), Outcome: store.OutcomeOK, StatusCode: 200, EventCount: 1}
				ev := &store.Event{ID: uuid.NewString(), WorkspaceID: "w", ConnectionID: "c", SubscriptionID: "s", EventKey: "e", Type: "t", Record: record, DeliveryID: d.ID, ReceiveTime: d.ReceiveTime}
				res, err := s.CommitDelivery(ctx, &store.DeliveryCommit{Delivery: d, Events: []*store.Event{ev}})
				if err != nil {
					fmt.Fprintln(os.Stderr, "commit:", err)
					os.Exit(2)
				}
				mu.Lock()
				_, _ = os.Stdout.WriteString(strconv.FormatInt(res.MaxSeq, 10) + "\n")
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(3) // the parent should have killed us long before
}

func TestCrashKeepsAcknowledgedCommits(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-executes the test binary")
	}
	dir := t.TempDir()
	acked := map[int64]bool{}
	for round := range 3 {
		n := runAndKill(t, dir, 300+200*round, acked)
		t.Logf("round %d: killed after %d acknowledged commits", round, n)

		// What a restart sees: every acknowledged seq, and a sound file.
		s, err := Open(t.Context(), filepath.Join(dir, "hookmap.db"), Options{})
		require.NoError(t, err)
		stored := map[int64]bool{}
		after := int64(0)
		for {
			evs, err := s.ListEvents(t.Context(), "w", store.EventFilter{}, after, 10000)
			require.NoError(t, err)
			for _, e := range evs {
				stored[e.Seq] = true
			}
			if len(evs) < 10000 {
				break
			}
			after = evs[len(evs)-1].Seq
		}
		missing := 0
		for seq := range acked {
			if !stored[seq] {
				missing++
			}
		}
		require.Zero(t, missing, "acknowledged seqs lost in the crash (of %d)", len(acked))
		require.NoError(t, s.Close())
		requireIntegrity(t, filepath.Join(dir, "hookmap.db"))
	}
}

// runAndKill starts the child, reads acknowledged seqs until it has at least n new ones,
// kills it (SIGKILL) and reads what the pipe still holds; it returns how many it read.
func runAndKill(t *testing.T, dir string, n int, acked map[int64]bool) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	sc := bufio.NewScanner(out)
	read := 0
	for sc.Scan() {
		seq, err := strconv.ParseInt(sc.Text(), 10, 64)
		require.NoError(t, err, "child output %q", sc.Text())
		require.False(t, acked[seq], "seq %d acknowledged twice", seq)
		acked[seq] = true
		read++
		if read == n && !killed {
			require.NoError(t, cmd.Process.Kill()) // SIGKILL: no deferred cleanup, no Close
			killed = true
		}
	}
	require.NoError(t, sc.Err())
	err = cmd.Wait()
	require.True(t, killed, "child exited on its own: %v\n%s", err, stderr.String())
	require.Error(t, err, "the child was killed")
	return read
}

func requireIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	var res string
	require.NoError(t, db.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&res))
	require.Equal(t, "ok", res)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
