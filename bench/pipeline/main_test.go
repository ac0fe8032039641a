package main

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// Every answer, and what is stored once the pipeline is closed: the bodies of the 200s
// only, committed, with the WAL bytes counted.
func TestPipeline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	p, err := open(path)
	require.NoError(t, err)
	srv := httptest.NewServer(p.Handler())

	good := `{"id":"1","action":"opened","user":{"id":1,"login":"octocat"}}`
	for _, tc := range []struct {
		name, body string
		status     int
		answer     string
	}{
		{"a webhook", good, http.StatusOK, `{}`},
		{"no action for the CEL expression", `{"id":"2"}`, http.StatusInternalServerError, `{"error":"type: no such key: action"}`},
		{"not JSON", `{"id":`, http.StatusBadRequest, `{"error":"body is not JSON: unexpected end of JSON input"}`},
		{"over 1 MiB", `"` + strings.Repeat("x", 1<<20) + `"`, http.StatusRequestEntityTooLarge, `{"error":"body over 1 MiB"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, answer := post(t, srv.URL+"/hooks/x", tc.body)
			require.Equal(t, tc.status, status)
			require.JSONEq(t, tc.answer, answer)
		})
	}

	// Concurrent webhooks share commits; each is answered after its own is on disk.
	statuses := make([]int, 64)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() {
			resp, err := http.Post(srv.URL+"/", "application/json", strings.NewReader(good))
			if err == nil {
				statuses[i] = resp.StatusCode
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	for _, s := range statuses {
		require.Equal(t, http.StatusOK, s)
	}

	resp, err := http.Get(srv.URL + "/stats")
	require.NoError(t, err)
	var stats struct {
		WALWrittenBytes int64 `json:"wal_written_bytes"`
		Commits         int64 `json:"commits"`
		Committed       int64 `json:"committed"`
		CommitNanos     int64 `json:"commit_nanos"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&stats))
	resp.Body.Close()
	// At least one frame (page and header) per commit, and not more than a few per webhook.
	require.GreaterOrEqual(t, stats.WALWrittenBytes, int64(2*(p.pageSize+24)))
	require.LessOrEqual(t, stats.WALWrittenBytes, int64(65*4*(p.pageSize+24)))
	require.Zero(t, stats.WALWrittenBytes%(p.pageSize+24), "whole frames")
	// the good webhook alone and the 64, in at least two commits and at most 65
	require.Equal(t, int64(65), stats.Committed)
	require.GreaterOrEqual(t, stats.Commits, int64(2))
	require.LessOrEqual(t, stats.Commits, int64(65))
	require.Positive(t, stats.CommitNanos)

	srv.Close()
	require.NoError(t, p.Close())
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	var n int
	var body string
	require.NoError(t, db.QueryRow(`SELECT count(*), min(body) FROM webhooks`).Scan(&n, &body))
	require.Equal(t, 65, n)
	require.Equal(t, good, body)
}
