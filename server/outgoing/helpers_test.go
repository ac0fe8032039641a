package outgoing

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testWorkspace = "ws1"

// env is a Sender on a fresh SQLite store, with its logs captured.
type env struct {
	t      *testing.T
	s      *Sender
	store  *sqlite.Store
	dbPath string
	logs   *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newEnv(t *testing.T, mod ...func(*Config)) *env {
	t.Helper()
	dbPath := filepath.Join(t.TempDir(), "hookmap.db")
	st, err := sqlite.Open(t.Context(), dbPath, sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.CreateWorkspace(t.Context(), &store.Workspace{ID: testWorkspace, Name: testWorkspace}))
	box, err := secrets.NewBox(bytes.Repeat([]byte{9}, secrets.KeySize))
	require.NoError(t, err)
	logs := &syncBuffer{}
	cfg := Config{
		Store: st, Box: box, Clients: GuardedClients(true),
		Logger:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RetryBase: 10 * time.Millisecond, RetryCap: 50 * time.Millisecond,
	}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return &env{t: t, s: s, store: st, dbPath: dbPath, logs: logs}
}

// register registers r (ID and URL required) and fails the test on an error.
func (e *env) register(r Registration) *store.OutgoingWebhook {
	e.t.Helper()
	w, err := e.s.Register(e.t.Context(), testWorkspace, r)
	require.NoError(e.t, err)
	return w.OutgoingWebhook
}

// trigger triggers and checks that exactly this invocation was recorded as returned.
func (e *env) trigger(t Trigger) *Result {
	e.t.Helper()
	res, err := e.s.Trigger(e.t.Context(), testWorkspace, t)
	require.NoError(e.t, err)
	inv, err := e.store.GetInvocation(context.Background(), testWorkspace, res.ReferenceID)
	require.NoError(e.t, err, "every invocation is recorded")
	require.Equal(e.t, t.WebhookID, inv.WebhookID)
	require.Equal(e.t, res.Attempts, inv.Attempts)
	require.Equal(e.t, res.Status, inv.Status)
	require.Equal(e.t, res.Error, inv.Error)
	require.Equal(e.t, res.ErrorMessage, inv.ErrorMessage)
	require.Equal(e.t, res.RequestSize, inv.RequestSize)
	require.Equal(e.t, res.ResponseSize, inv.ResponseSize)
	require.Equal(e.t, res.Duration, inv.Duration)
	require.WithinDuration(e.t, time.Now(), inv.Time, time.Minute)
	return res
}

func (e *env) invocationCount() int {
	e.t.Helper()
	invs, _, err := e.store.ListInvocations(context.Background(), testWorkspace, store.InvocationFilter{}, store.Page{Size: 1000})
	require.NoError(e.t, err)
	return len(invs)
}

// captured is one request a test server received.
type captured struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
	At     time.Time
}

// recorder is a test server that records requests and answers with handle.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []captured
}

func newRecorder(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := new(bytes.Buffer)
		_, _ = body.ReadFrom(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, captured{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body.Bytes(), time.Now()})
		n := len(rec.reqs)
		rec.mu.Unlock()
		handle(w, r, n)
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (r *recorder) requests() []captured {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]captured(nil), r.reqs...)
}

func (r *recorder) last(t *testing.T) captured {
	t.Helper()
	reqs := r.requests()
	require.NotEmpty(t, reqs)
	return reqs[len(reqs)-1]
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}
