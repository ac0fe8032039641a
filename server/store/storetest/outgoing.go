package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// workspacesToken is a page token of ListWorkspaces, which other lists must refuse.
func workspacesToken(t *testing.T, s store.Store) string {
	t.Helper()
	_, tok, err := s.ListWorkspaces(ctxOf(t), store.Page{Size: 1})
	require.NoError(t, err)
	require.NotEmpty(t, tok)
	return tok
}

func outgoingID(i int) string { return fmt.Sprintf("id-%04d", i) }

var outgoingBase = time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)

func sampleOutgoing(ws, id string) *store.OutgoingWebhook {
	return &store.OutgoingWebhook{
		WorkspaceID: ws, ID: id, URL: "https://example.com/hook?x=1", Method: "POST",
		HeaderNames: []string{"Authorization", "X-Team"}, Headers: []byte{1, 2, 3},
		QueryParams: []string{"page"}, PayloadEncoding: store.EncodingJSON, Timeout: 30 * time.Second,
		SigningSecret: []byte{4, 5, 6}, MaxAttempts: 3, FollowRedirects: true,
	}
}

func testOutgoingWebhooks(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws1, ws2 := mkWorkspace(t, s), mkWorkspace(t, s)

	w := sampleOutgoing(ws1, "slack")
	require.NoError(t, s.CreateOutgoingWebhook(ctx, w))
	require.False(t, w.CreateTime.IsZero())
	require.Equal(t, w.CreateTime, w.UpdateTime)

	got, err := s.GetOutgoingWebhook(ctx, ws1, "slack")
	require.NoError(t, err)
	require.Equal(t, w, got)

	// Duplicates: same id in the same workspace; the same id in another workspace is fine.
	require.ErrorIs(t, s.CreateOutgoingWebhook(ctx, sampleOutgoing(ws1, "slack")), store.ErrAlreadyExists)
	other := sampleOutgoing(ws2, "slack")
	other.URL = "https://other.example/"
	require.NoError(t, s.CreateOutgoingWebhook(ctx, other))
	// Unknown workspace.
	require.ErrorIs(t, s.CreateOutgoingWebhook(ctx, sampleOutgoing("nope", "x")), store.ErrNotFound)

	// Isolation.
	got, err = s.GetOutgoingWebhook(ctx, ws2, "slack")
	require.NoError(t, err)
	require.Equal(t, "https://other.example/", got.URL)
	_, err = s.GetOutgoingWebhook(ctx, "no-such-workspace", "slack")
	require.ErrorIs(t, err, store.ErrNotFound)

	// Update replaces every mutable field, nil lists and blobs included.
	upd := &store.OutgoingWebhook{
		WorkspaceID: ws1, ID: "slack", URL: "http://example.org/", Method: "GET",
		PayloadEncoding: store.EncodingText, ContentType: "text/csv", Timeout: time.Second, MaxAttempts: 1,
	}
	require.NoError(t, s.UpdateOutgoingWebhook(ctx, upd))
	got, err = s.GetOutgoingWebhook(ctx, ws1, "slack")
	require.NoError(t, err)
	require.Equal(t, upd.UpdateTime, got.UpdateTime)
	require.Equal(t, w.CreateTime, got.CreateTime)
	upd.CreateTime = w.CreateTime
	require.Equal(t, upd, got)
	require.Nil(t, got.Headers)
	require.Nil(t, got.SigningSecret)
	require.ErrorIs(t, s.UpdateOutgoingWebhook(ctx, sampleOutgoing("no-such-workspace", "slack")), store.ErrNotFound)

	// Delete is per workspace.
	require.ErrorIs(t, s.DeleteOutgoingWebhook(ctx, "no-such-workspace", "slack"), store.ErrNotFound)
	require.NoError(t, s.DeleteOutgoingWebhook(ctx, ws1, "slack"))
	_, err = s.GetOutgoingWebhook(ctx, ws1, "slack")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteOutgoingWebhook(ctx, ws1, "slack"), store.ErrNotFound)
	_, err = s.GetOutgoingWebhook(ctx, ws2, "slack")
	require.NoError(t, err)
}

func testOutgoingWebhookPagination(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws1, ws2 := mkWorkspace(t, s), mkWorkspace(t, s)
	for i := range 7 {
		require.NoError(t, s.CreateOutgoingWebhook(ctx, sampleOutgoing(ws1, outgoingID(i))))
	}
	require.NoError(t, s.CreateOutgoingWebhook(ctx, sampleOutgoing(ws2, "other")))

	var ids []string
	tok := ""
	pages := 0
	for {
		ws, next, err := s.ListOutgoingWebhooks(ctx, ws1, store.Page{Size: 3, Token: tok})
		require.NoError(t, err)
		pages++
		for _, w := range ws {
			require.Equal(t, ws1, w.WorkspaceID)
			ids = append(ids, w.ID)
		}
		if next == "" {
			break
		}
		tok = next
	}
	require.Equal(t, 3, pages)
	require.Equal(t, []string{outgoingID(0), outgoingID(1), outgoingID(2), outgoingID(3), outgoingID(4), outgoingID(5), outgoingID(6)}, ids)

	_, _, err := s.ListOutgoingWebhooks(ctx, ws1, store.Page{Token: "garbage"})
	require.ErrorIs(t, err, store.ErrInvalidPageToken)
	// A token of another list is refused.
	_, _, err = s.ListOutgoingWebhooks(ctx, ws1, store.Page{Token: workspacesToken(t, s)})
	require.ErrorIs(t, err, store.ErrInvalidPageToken)
}

func testOutgoingInvocations(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws1, ws2 := mkWorkspace(t, s), mkWorkspace(t, s)
	// 10 invocations of ws1 alternating between two webhooks, every third one an error,
	// one minute apart; plus one of ws2.
	for i := range 10 {
		inv := &store.Invocation{
			WorkspaceID: ws1, ReferenceID: fmt.Sprintf("ref-%02d", i), WebhookID: []string{"a", "b"}[i%2],
			Time: outgoingBase.Add(time.Duration(i) * time.Minute), Attempts: 1 + i%3, Status: 200,
			Duration: time.Duration(i) * time.Millisecond, RequestSize: int64(i), ResponseSize: int64(2 * i),
		}
		if i%3 == 0 {
			inv.Error, inv.Status, inv.ErrorMessage = true, 0, "connection refused"
		}
		require.NoError(t, s.RecordInvocation(ctx, inv))
	}
	require.NoError(t, s.RecordInvocation(ctx, &store.Invocation{WorkspaceID: ws2, ReferenceID: "ref-ws2", WebhookID: "a", Time: outgoingBase}))
	require.ErrorIs(t, s.RecordInvocation(ctx, &store.Invocation{WorkspaceID: ws1, ReferenceID: "ref-00", WebhookID: "a"}), store.ErrAlreadyExists)

	got, err := s.GetInvocation(ctx, ws1, "ref-03")
	require.NoError(t, err)
	require.Equal(t, &store.Invocation{
		WorkspaceID: ws1, ReferenceID: "ref-03", WebhookID: "b", Time: outgoingBase.Add(3 * time.Minute), Attempts: 1,
		Status: 0, Duration: 3 * time.Millisecond, RequestSize: 3, ResponseSize: 6, Error: true, ErrorMessage: "connection refused",
		ChainReferenceID: "ref-03", Hop: 1,
	}, got)
	_, err = s.GetInvocation(ctx, ws2, "ref-03")
	require.ErrorIs(t, err, store.ErrNotFound)

	list := func(f store.InvocationFilter, size int) []string {
		t.Helper()
		var refs []string
		tok := ""
		for {
			invs, next, err := s.ListInvocations(ctx, ws1, f, store.Page{Size: size, Token: tok})
			require.NoError(t, err)
			require.LessOrEqual(t, len(invs), size)
			for _, inv := range invs {
				refs = append(refs, inv.ReferenceID)
			}
			if next == "" {
				return refs
			}
			tok = next
		}
	}
	require.Equal(t, []string{"ref-09", "ref-08", "ref-07", "ref-06", "ref-05", "ref-04", "ref-03", "ref-02", "ref-01", "ref-00"},
		list(store.InvocationFilter{}, 3))
	require.Equal(t, []string{"ref-08", "ref-06", "ref-04", "ref-02", "ref-00"}, list(store.InvocationFilter{WebhookID: "a"}, 2))
	require.Equal(t, []string{"ref-09", "ref-06", "ref-03", "ref-00"}, list(store.InvocationFilter{ErrorsOnly: true}, 50))
	require.Equal(t, []string{"ref-05", "ref-04", "ref-03"},
		list(store.InvocationFilter{Start: outgoingBase.Add(3 * time.Minute), End: outgoingBase.Add(6 * time.Minute)}, 1))
	require.Equal(t, []string{"ref-06", "ref-00"},
		list(store.InvocationFilter{WebhookID: "a", ErrorsOnly: true, End: outgoingBase.Add(8 * time.Minute)}, 1))

	// Same time: newest inserted first, and pages do not skip or repeat.
	for i := range 3 {
		require.NoError(t, s.RecordInvocation(ctx, &store.Invocation{WorkspaceID: ws1, ReferenceID: fmt.Sprintf("tie-%d", i), WebhookID: "c", Time: outgoingBase}))
	}
	require.Equal(t, []string{"tie-2", "tie-1", "tie-0"}, list(store.InvocationFilter{WebhookID: "c"}, 1))

	_, _, err = s.ListInvocations(ctx, ws1, store.InvocationFilter{}, store.Page{Token: workspacesToken(t, s)})
	require.ErrorIs(t, err, store.ErrInvalidPageToken)

	// Prune removes older records in every workspace.
	n, err := s.PruneInvocations(ctx, outgoingBase.Add(5*time.Minute))
	require.NoError(t, err)
	require.EqualValues(t, 5+1+3, n)
	require.Equal(t, []string{"ref-09", "ref-08", "ref-07", "ref-06", "ref-05"}, list(store.InvocationFilter{}, 50))
}
