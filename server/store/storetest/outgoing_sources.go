package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// RunOutgoing runs the conformance tests of the outgoing webhooks' sources and chains,
// each as a parallel subtest on its own store (open as for RunAll).
func RunOutgoing(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"WebhookSources", testWebhookSources},
		{"WebhookChains", testWebhookChains},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func webhookOf(ws, id, source string) *store.OutgoingWebhook {
	return &store.OutgoingWebhook{
		WorkspaceID: ws, ID: id, URL: "https://example.com/" + id, Method: "POST", PayloadEncoding: store.EncodingJSON,
		Timeout: 30 * time.Second, MaxAttempts: 1, Source: source, CreateTime: base, UpdateTime: base,
	}
}

func testWebhookSources(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws1, ws2 := mkWorkspace(t, s), mkWorkspace(t, s)
	if ws2 < ws1 {
		ws1, ws2 = ws2, ws1
	}
	for _, w := range []*store.OutgoingWebhook{
		webhookOf(ws2, "b", store.SourceFile), webhookOf(ws1, "z", store.SourceFile), webhookOf(ws1, "a", store.SourceFile),
		webhookOf(ws1, "api", store.SourceAPI), webhookOf(ws2, "unset", ""),
	} {
		require.NoError(t, s.CreateOutgoingWebhook(ctx, w))
		if w.ID == "unset" {
			require.Equal(t, store.SourceAPI, w.Source, "an unset source is the API's")
		}
	}
	got, err := s.GetOutgoingWebhook(ctx, ws2, "unset")
	require.NoError(t, err)
	require.Equal(t, store.SourceAPI, got.Source)

	keys := func(source string) []string {
		t.Helper()
		ws, err := s.ListOutgoingWebhooksBySource(ctx, source)
		require.NoError(t, err)
		var out []string
		for _, w := range ws {
			out = append(out, w.WorkspaceID+"/"+w.ID)
		}
		return out
	}
	require.Equal(t, []string{ws1 + "/a", ws1 + "/z", ws2 + "/b"}, keys(store.SourceFile), "ordered by workspace and id")
	require.Equal(t, []string{ws1 + "/api", ws2 + "/unset"}, keys(store.SourceAPI))
	require.Empty(t, keys("elsewhere"))

	// UpdateOutgoingWebhook replaces the source too.
	w := webhookOf(ws1, "z", store.SourceAPI)
	require.NoError(t, s.UpdateOutgoingWebhook(ctx, w))
	require.Equal(t, []string{ws1 + "/a", ws2 + "/b"}, keys(store.SourceFile))
	require.NoError(t, s.DeleteOutgoingWebhook(ctx, ws1, "a"))
	require.Equal(t, []string{ws2 + "/b"}, keys(store.SourceFile))
}

func testWebhookChains(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	w := webhookOf(ws, "a", store.SourceAPI)
	w.Next = &store.WebhookNext{
		WebhookID: "b",
		When:      "response.status == 200",
		Data:      map[string]any{"id": map[string]any{"$cel": "response.data.id"}, "n": int64(9007199254740993), "f": 0.5},
		Headers:   map[string]any{"X-A": "1"},
	}
	require.NoError(t, s.CreateOutgoingWebhook(ctx, w))
	got, err := s.GetOutgoingWebhook(ctx, ws, "a")
	require.NoError(t, err)
	require.Equal(t, w.Next, got.Next, "next's mapping values come back as they went in")
	w.Next = nil
	require.NoError(t, s.UpdateOutgoingWebhook(ctx, w))
	got, err = s.GetOutgoingWebhook(ctx, ws, "a")
	require.NoError(t, err)
	require.Nil(t, got.Next)

	// Invocations of a chain, linked to the first one's reference id.
	first := newID("ref")
	for hop, id := range []string{first, newID("ref"), newID("ref")} {
		require.NoError(t, s.RecordInvocation(ctx, &store.Invocation{
			WorkspaceID: ws, ReferenceID: id, WebhookID: "a", Time: at(time.Duration(hop) * time.Second),
			ChainReferenceID: first, Hop: hop + 1,
		}))
	}
	alone := &store.Invocation{WorkspaceID: ws, ReferenceID: newID("ref"), WebhookID: "a", Time: at(time.Minute)}
	require.NoError(t, s.RecordInvocation(ctx, alone))
	require.Equal(t, alone.ReferenceID, alone.ChainReferenceID, "a first call starts its own chain")
	require.Equal(t, 1, alone.Hop)

	invs, _, err := s.ListInvocations(ctx, ws, store.InvocationFilter{ChainReferenceID: first}, store.Page{})
	require.NoError(t, err)
	require.Len(t, invs, 3)
	for i, inv := range invs { // newest first
		require.Equal(t, first, inv.ChainReferenceID)
		require.Equal(t, 3-i, inv.Hop)
	}
	got2, err := s.GetInvocation(ctx, ws, alone.ReferenceID)
	require.NoError(t, err)
	require.Equal(t, alone.ReferenceID, got2.ChainReferenceID)
	invs, _, err = s.ListInvocations(ctx, mkWorkspace(t, s), store.InvocationFilter{ChainReferenceID: first}, store.Page{})
	require.NoError(t, err)
	require.Empty(t, invs, "another workspace sees none")
}
