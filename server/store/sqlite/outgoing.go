package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/pagetoken"
)

var (
	_ store.OutgoingStore       = (*Store)(nil)
	_ store.OutgoingSourceStore = (*Store)(nil)
)

// sourceOf is w's source, SourceAPI when unset.
func sourceOf(w *store.OutgoingWebhook) string {
	if w.Source == "" {
		return store.SourceAPI
	}
	return w.Source
}

// CreateOutgoingWebhook inserts w; its workspace must exist (else store.ErrNotFound), and
// its ID must be new in the workspace (else store.ErrAlreadyExists). Zero CreateTime and
// UpdateTime are set to now.
func (s *Store) CreateOutgoingWebhook(ctx context.Context, w *store.OutgoingWebhook) error {
	names, params, next, err := encodeOutgoingLists(w)
	if err != nil {
		return err
	}
	created, updated := createTimes(w.CreateTime, w.UpdateTime)
	err = s.write(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO outgoing_webhooks (workspace_id, id, url, method, header_names, headers, query_params,
			payload_encoding, content_type, timeout, signing_secret, max_attempts, follow_redirects, source, next, create_time, update_time)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			w.WorkspaceID, w.ID, w.URL, w.Method, names, blob(w.Headers), params,
			w.PayloadEncoding, w.ContentType, int64(w.Timeout), blob(w.SigningSecret), w.MaxAttempts, w.FollowRedirects,
			sourceOf(w), next, nanos(created), nanos(updated))
		return insertErr("outgoing webhook", w.ID, "workspace "+quote(w.WorkspaceID), err)
	})
	if err == nil {
		w.CreateTime, w.UpdateTime, w.Source = created, updated, sourceOf(w)
	}
	return err
}

func encodeOutgoingLists(w *store.OutgoingWebhook) (names, params, next any, err error) {
	if names, err = encodeJSON(w.HeaderNames, w.HeaderNames == nil); err != nil {
		return nil, nil, nil, fmt.Errorf("outgoing webhook %q header names: %w", w.ID, err)
	}
	if params, err = encodeJSON(w.QueryParams, w.QueryParams == nil); err != nil {
		return nil, nil, nil, fmt.Errorf("outgoing webhook %q query params: %w", w.ID, err)
	}
	if w.Next != nil {
		n := w.Next
		if next, err = encodeMap(map[string]any{
			"webhook_id": n.WebhookID, "when": n.When, "data": n.Data, "headers": n.Headers, "query_params": n.QueryParams,
		}); err != nil {
			return nil, nil, nil, fmt.Errorf("outgoing webhook %q next: %w", w.ID, err)
		}
	}
	return names, params, next, nil
}

func decodeNext(s sql.NullString) (*store.WebhookNext, error) {
	m, err := decodeMap(s)
	if err != nil || m == nil {
		return nil, err
	}
	id, _ := m["webhook_id"].(string)
	return &store.WebhookNext{WebhookID: id, When: m["when"], Data: m["data"], Headers: m["headers"], QueryParams: m["query_params"]}, nil
}

const outgoingWebhookCols = `rid, workspace_id, id, url, method, header_names, headers, query_params, payload_encoding,
	content_type, timeout, signing_secret, max_attempts, follow_redirects, source, next, create_time, update_time`

func scanOutgoingWebhook(sc scanner) (keyed[*store.OutgoingWebhook], error) {
	w := &store.OutgoingWebhook{}
	var rid, timeout, created, updated int64
	var names, params, next sql.NullString
	if err := sc.Scan(&rid, &w.WorkspaceID, &w.ID, &w.URL, &w.Method, &names, &w.Headers, &params, &w.PayloadEncoding,
		&w.ContentType, &timeout, &w.SigningSecret, &w.MaxAttempts, &w.FollowRedirects, &w.Source, &next, &created, &updated); err != nil {
		return keyed[*store.OutgoingWebhook]{}, err
	}
	var err error
	if w.HeaderNames, err = decodeJSON[[]string](names); err != nil {
		return keyed[*store.OutgoingWebhook]{key: rid, v: w}, unreadable(fmt.Sprintf("outgoing webhook %q header names", w.ID), err)
	}
	if w.QueryParams, err = decodeJSON[[]string](params); err != nil {
		return keyed[*store.OutgoingWebhook]{key: rid, v: w}, unreadable(fmt.Sprintf("outgoing webhook %q query params", w.ID), err)
	}
	if w.Next, err = decodeNext(next); err != nil {
		return keyed[*store.OutgoingWebhook]{key: rid, v: w}, unreadable(fmt.Sprintf("outgoing webhook %q next", w.ID), err)
	}
	w.Timeout = time.Duration(timeout)
	w.CreateTime, w.UpdateTime = fromNanos(created), fromNanos(updated)
	return keyed[*store.OutgoingWebhook]{key: rid, v: w}, nil
}

// GetOutgoingWebhook returns a webhook of the workspace.
func (s *Store) GetOutgoingWebhook(ctx context.Context, workspaceID, id string) (*store.OutgoingWebhook, error) {
	k, err := getOne(ctx, s, "outgoing webhook", id,
		`SELECT `+outgoingWebhookCols+` FROM outgoing_webhooks WHERE workspace_id = ? AND id = ?`,
		scanOutgoingWebhook, workspaceID, id)
	return k.v, err
}

// ListOutgoingWebhooks lists the workspace's webhooks in creation order.
func (s *Store) ListOutgoingWebhooks(ctx context.Context, workspaceID string, p store.Page) ([]*store.OutgoingWebhook, string, error) {
	after, err := pagetoken.After("owh", p.Token)
	if err != nil {
		return nil, "", err
	}
	size := pagetoken.Size(p)
	rows, err := getAll(ctx, s, "list outgoing webhooks",
		`SELECT `+outgoingWebhookCols+` FROM outgoing_webhooks WHERE workspace_id = ? AND rid > ? ORDER BY rid LIMIT ?`,
		true, scanOutgoingWebhook, workspaceID, after, size+1)
	if err != nil {
		return nil, "", err
	}
	ws, next := paginate(rows, size, "owh")
	return ws, next, nil
}

// UpdateOutgoingWebhook replaces every mutable field and sets UpdateTime to now.
func (s *Store) UpdateOutgoingWebhook(ctx context.Context, w *store.OutgoingWebhook) error {
	names, params, next, err := encodeOutgoingLists(w)
	if err != nil {
		return err
	}
	updated := now()
	err = s.write(ctx, func(t *wtx) error {
		res, err := t.exec(`UPDATE outgoing_webhooks SET url = ?, method = ?, header_names = ?, headers = ?, query_params = ?,
			payload_encoding = ?, content_type = ?, timeout = ?, signing_secret = ?, max_attempts = ?, follow_redirects = ?,
			source = ?, next = ?, update_time = ? WHERE workspace_id = ? AND id = ?`,
			w.URL, w.Method, names, blob(w.Headers), params,
			w.PayloadEncoding, w.ContentType, int64(w.Timeout), blob(w.SigningSecret), w.MaxAttempts, w.FollowRedirects,
			sourceOf(w), next, nanos(updated), w.WorkspaceID, w.ID)
		return mustAffect(res, err, "outgoing webhook", w.ID)
	})
	if err == nil {
		w.UpdateTime, w.Source = updated, sourceOf(w)
	}
	return err
}

// ListOutgoingWebhooksBySource returns every workspace's webhooks of a source, ordered by
// workspace and id.
func (s *Store) ListOutgoingWebhooksBySource(ctx context.Context, source string) ([]*store.OutgoingWebhook, error) {
	rows, err := getAll(ctx, s, "list outgoing webhooks by source",
		`SELECT `+outgoingWebhookCols+` FROM outgoing_webhooks WHERE source = ? ORDER BY workspace_id, id`,
		true, scanOutgoingWebhook, source)
	if err != nil {
		return nil, err
	}
	out := make([]*store.OutgoingWebhook, 0, len(rows))
	for _, r := range rows {
		if !r.bad { // unreadable: logged and left out
			out = append(out, r.v)
		}
	}
	return out, nil
}

// DeleteOutgoingWebhook deletes a webhook; its invocation records stay.
func (s *Store) DeleteOutgoingWebhook(ctx context.Context, workspaceID, id string) error {
	return s.write(ctx, func(t *wtx) error {
		res, err := t.exec(`DELETE FROM outgoing_webhooks WHERE workspace_id = ? AND id = ?`, workspaceID, id)
		return mustAffect(res, err, "outgoing webhook", id)
	})
}

// RecordInvocation inserts an invocation record. A zero Time is set to now, an empty
// ChainReferenceID to the ReferenceID and a zero Hop to 1.
func (s *Store) RecordInvocation(ctx context.Context, inv *store.Invocation) error {
	at := orNow(inv.Time)
	chain, hop := inv.ChainReferenceID, inv.Hop
	if chain == "" {
		chain = inv.ReferenceID
	}
	if hop <= 0 {
		hop = 1
	}
	err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO outgoing_invocations (reference_id, workspace_id, webhook_id, time, attempts, status,
			duration, request_size, response_size, error, error_message, chain_reference_id, hop)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			inv.ReferenceID, inv.WorkspaceID, inv.WebhookID, nanos(at), inv.Attempts, inv.Status,
			int64(inv.Duration), inv.RequestSize, inv.ResponseSize, inv.Error, inv.ErrorMessage, chain, hop)
		return insertErr("invocation", inv.ReferenceID, "", err)
	})
	if err == nil {
		inv.Time, inv.ChainReferenceID, inv.Hop = at, chain, hop
	}
	return err
}

const invocationCols = `rid, reference_id, workspace_id, webhook_id, time, attempts, status, duration, request_size,
	response_size, error, error_message, chain_reference_id, hop`

func scanInvocation(sc scanner) (keyed[*store.Invocation], error) {
	inv := &store.Invocation{}
	var rid, at, dur int64
	if err := sc.Scan(&rid, &inv.ReferenceID, &inv.WorkspaceID, &inv.WebhookID, &at, &inv.Attempts, &inv.Status, &dur,
		&inv.RequestSize, &inv.ResponseSize, &inv.Error, &inv.ErrorMessage, &inv.ChainReferenceID, &inv.Hop); err != nil {
		return keyed[*store.Invocation]{}, err
	}
	if inv.ChainReferenceID == "" { // recorded before chains
		inv.ChainReferenceID = inv.ReferenceID
	}
	inv.Time, inv.Duration = fromNanos(at), time.Duration(dur)
	return keyed[*store.Invocation]{key: rid, v: inv}, nil
}

// GetInvocation returns an invocation record of the workspace.
func (s *Store) GetInvocation(ctx context.Context, workspaceID, referenceID string) (*store.Invocation, error) {
	k, err := getOne(ctx, s, "invocation", referenceID,
		`SELECT `+invocationCols+` FROM outgoing_invocations WHERE reference_id = ? AND workspace_id = ?`,
		scanInvocation, referenceID, workspaceID)
	return k.v, err
}

// ListInvocations lists the workspace's invocation records, newest first.
func (s *Store) ListInvocations(ctx context.Context, workspaceID string, f store.InvocationFilter, p store.Page) ([]*store.Invocation, string, error) {
	keys, err := pagetoken.Decode("inv", p.Token, 2)
	if err != nil {
		return nil, "", err
	}
	size := pagetoken.Size(p)
	var where strings.Builder
	where.WriteString(`workspace_id = ?`)
	args := []any{workspaceID}
	if f.WebhookID != "" {
		where.WriteString(` AND webhook_id = ?`)
		args = append(args, f.WebhookID)
	}
	if f.ChainReferenceID != "" {
		where.WriteString(` AND chain_reference_id = ?`)
		args = append(args, f.ChainReferenceID)
	}
	if !f.Start.IsZero() {
		where.WriteString(` AND time >= ?`)
		args = append(args, nanos(f.Start))
	}
	if !f.End.IsZero() {
		where.WriteString(` AND time < ?`)
		args = append(args, nanos(f.End))
	}
	if f.ErrorsOnly {
		where.WriteString(` AND error <> 0`)
	}
	if keys != nil {
		where.WriteString(` AND (time, rid) < (?, ?)`)
		args = append(args, keys[0], keys[1])
	}
	args = append(args, size+1)
	rows, err := getAll(ctx, s, "list invocations",
		`SELECT `+invocationCols+` FROM outgoing_invocations WHERE `+where.String()+` ORDER BY time DESC, rid DESC LIMIT ?`,
		true, scanInvocation, args...)
	if err != nil {
		return nil, "", err
	}
	out, next := paginateByTime(rows, size, "inv", func(inv *store.Invocation) time.Time { return inv.Time })
	return out, next, nil
}

// PruneInvocations deletes the records older than before, in chunks so the writer is
// never held for long.
func (s *Store) PruneInvocations(ctx context.Context, before time.Time) (int64, error) {
	return s.deleteChunked(ctx, `DELETE FROM outgoing_invocations WHERE rid IN
		(SELECT rid FROM outgoing_invocations WHERE time < ? LIMIT ?)`, nanos(before), nil)
}
