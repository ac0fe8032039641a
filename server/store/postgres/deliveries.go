package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/pagetoken"
)

// deliveryRow is a delivery encoded for its columns.
type deliveryRow struct {
	id, workspaceID, subscriptionID, globalWebhookID string
	receiveTime                                      pgtype.Timestamptz
	statusCode                                       int
	outcome, errText                                 string
	eventCount                                       int
	requestSize                                      int64
	selectors                                        *string
	replayCount                                      int
	method, path, query, headers                     *string
	body                                             []byte
}

func encodeDelivery(d *store.Delivery) (*deliveryRow, error) {
	selectors, err := encodeJSON(d.Selectors, d.Selectors == nil)
	if err != nil {
		return nil, fmt.Errorf("delivery %q selectors: %w", d.ID, err)
	}
	r := &deliveryRow{
		id: d.ID, workspaceID: d.WorkspaceID, subscriptionID: d.SubscriptionID, globalWebhookID: d.GlobalWebhookID,
		receiveTime: tsSorted(d.ReceiveTime), statusCode: d.StatusCode, outcome: d.Outcome, errText: clean(d.Error),
		eventCount: d.EventCount, requestSize: d.RequestSize, selectors: selectors, replayCount: d.ReplayCount,
	}
	if req := d.Request; req != nil {
		method, path, query := clean(req.Method), clean(req.Path), clean(req.Query)
		r.method, r.path, r.query = &method, &path, &query
		r.body = req.Body
		if r.body == nil {
			r.body = []byte{}
		}
		if r.headers, err = encodeJSON(req.Headers, req.Headers == nil); err != nil {
			return nil, fmt.Errorf("delivery %q headers: %w", d.ID, err)
		}
	}
	return r, nil
}

// eventRow is an event encoded for its columns.
type eventRow struct {
	ev                                                      *store.Event
	workspaceID, id, connectionID, subscriptionID, eventKey string
	typ, record, externalID, deliveryID                     string
	receiveTime                                             pgtype.Timestamptz
}

// stateRow is a state update: the new state (sealed by the caller), or change, which
// makes it from the stored one inside the transaction.
type stateRow struct {
	id, workspaceID string
	state           []byte
	change          func(stored []byte) ([]byte, error)
}

// CommitDelivery writes the delivery, its events and state updates in one transaction
// (group-committed with concurrent deliveries) and returns once it is committed.
//
// A state update of a subscription that no longer exists (deleted while its delivery was
// handled) is skipped: the events it came with are kept.
func (s *Store) CommitDelivery(ctx context.Context, c *store.DeliveryCommit) (*store.CommitResult, error) {
	return s.commit(ctx, c, nil)
}

// commit is CommitDelivery; edit, when set, adds to the op before it is queued (the
// fetches a delivery asks for, the end of a fetch's run).
func (s *Store) commit(ctx context.Context, c *store.DeliveryCommit, edit func(*commitOp)) (*store.CommitResult, error) {
	if c == nil {
		return nil, errors.New("postgres: CommitDelivery: nil commit")
	}
	// Encoding is done here, on the caller's goroutine, to keep the committers' work short.
	op := &commitOp{commit: c, done: make(chan error, 1)}
	workspaceID := ""
	if c.Delivery != nil {
		var err error
		if op.delivery, err = encodeDelivery(c.Delivery); err != nil {
			return nil, err
		}
		workspaceID = c.Delivery.WorkspaceID
	}
	op.events = make([]eventRow, len(c.Events))
	for i, ev := range c.Events {
		if workspaceID != "" && ev.WorkspaceID != workspaceID {
			return nil, fmt.Errorf("postgres: CommitDelivery: event %q of workspace %q in a delivery of workspace %q", ev.ID, ev.WorkspaceID, workspaceID)
		}
		rec, err := value.Encode(ev.Record)
		if err != nil {
			return nil, fmt.Errorf("event %q record: %w", ev.ID, err)
		}
		op.events[i] = eventRow{
			ev: ev, workspaceID: ev.WorkspaceID, id: ev.ID, connectionID: ev.ConnectionID, subscriptionID: ev.SubscriptionID,
			eventKey: ev.EventKey, typ: clean(ev.Type), record: string(rec), externalID: clean(ev.ExternalID),
			deliveryID: ev.DeliveryID, receiveTime: tsSorted(ev.ReceiveTime),
		}
	}
	op.states = make([]stateRow, len(c.StateUpdates))
	for i, u := range c.StateUpdates {
		ws := workspaceID
		if ws == "" {
			ws = c.SubscriptionWorkspace(u.SubscriptionID)
		}
		op.states[i] = stateRow{u.SubscriptionID, ws, u.State, u.Change}
	}
	if edit != nil {
		edit(op)
	}
	if err := s.enqueue(ctx, op); err != nil {
		return nil, err
	}
	c.Applied(op.result)
	return op.result, nil
}

const (
	deliveryCols = `rid, id, workspace_id, subscription_id, global_webhook_id, receive_time, status_code, outcome, error,
	event_count, request_size, selectors::text, replay_count, fetch_status, fetch_attempts`
	requestCols = `request_method, request_path, request_query, request_headers::text, request_body`
	// hasRequestCol reads no request column but the method: a page never loads a body.
	hasRequestCol = `request_method IS NOT NULL`
)

// scanDelivery scans deliveryCols and requestCols.
func scanDelivery(sc scanner) (keyed[*store.Delivery], error) {
	d := &store.Delivery{}
	var rid int64
	var received pgtype.Timestamptz
	var selectors, method, path, query, headers *string
	var body []byte
	if err := sc.Scan(&rid, &d.ID, &d.WorkspaceID, &d.SubscriptionID, &d.GlobalWebhookID, &received, &d.StatusCode,
		&d.Outcome, &d.Error, &d.EventCount, &d.RequestSize, &selectors, &d.ReplayCount, &d.FetchStatus, &d.FetchAttempts,
		&method, &path, &query, &headers, &body); err != nil {
		return keyed[*store.Delivery]{}, err
	}
	if err := decodeDelivery(d, received, selectors); err != nil {
		return keyed[*store.Delivery]{key: rid, v: d}, err
	}
	var err error
	if method != nil {
		d.HasRequest = true
		d.Request = &store.RawRequest{Method: *method, Path: deref(path), Query: deref(query), Body: body}
		if d.Request.Headers, err = decodeJSON[map[string][]string](headers); err != nil {
			return keyed[*store.Delivery]{key: rid, v: d}, unreadable(fmt.Sprintf("delivery %q headers", d.ID), err)
		}
		if d.Request.Body == nil {
			d.Request.Body = []byte{}
		}
	}
	return keyed[*store.Delivery]{key: rid, v: d}, nil
}

// scanListedDelivery scans deliveryCols and hasRequestCol: no request is loaded.
func scanListedDelivery(sc scanner) (keyed[*store.Delivery], error) {
	d := &store.Delivery{}
	var rid int64
	var received pgtype.Timestamptz
	var selectors *string
	if err := sc.Scan(&rid, &d.ID, &d.WorkspaceID, &d.SubscriptionID, &d.GlobalWebhookID, &received, &d.StatusCode,
		&d.Outcome, &d.Error, &d.EventCount, &d.RequestSize, &selectors, &d.ReplayCount, &d.FetchStatus, &d.FetchAttempts,
		&d.HasRequest); err != nil {
		return keyed[*store.Delivery]{}, err
	}
	if err := decodeDelivery(d, received, selectors); err != nil {
		return keyed[*store.Delivery]{key: rid, v: d}, err
	}
	return keyed[*store.Delivery]{key: rid, v: d}, nil
}

func decodeDelivery(d *store.Delivery, received pgtype.Timestamptz, selectors *string) error {
	d.ReceiveTime = fromTS(received)
	var err error
	if d.Selectors, err = decodeJSON[[]string](selectors); err != nil {
		return unreadable(fmt.Sprintf("delivery %q selectors", d.ID), err)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// GetDelivery returns a delivery of the workspace, with its kept request.
func (s *Store) GetDelivery(ctx context.Context, workspaceID, id string) (*store.Delivery, error) {
	k, err := getOne(ctx, s, "delivery", id,
		`SELECT `+deliveryCols+`, `+requestCols+` FROM deliveries WHERE id = $1 AND workspace_id = $2`, scanDelivery, id, workspaceID)
	return k.v, err
}

// whereBuilder builds a WHERE clause with numbered parameters.
type whereBuilder struct {
	b    strings.Builder
	args []any
}

// add appends " AND " (unless first) and cond, whose "?" placeholders take args in order.
func (w *whereBuilder) add(cond string, args ...any) {
	if w.b.Len() > 0 {
		w.b.WriteString(" AND ")
	}
	for _, a := range args {
		i := strings.IndexByte(cond, '?')
		w.args = append(w.args, a)
		cond = fmt.Sprintf("%s$%d%s", cond[:i], len(w.args), cond[i+1:])
	}
	w.b.WriteString(cond)
}

// next is the placeholder of one more argument.
func (w *whereBuilder) next(arg any) string {
	w.args = append(w.args, arg)
	return fmt.Sprintf("$%d", len(w.args))
}

// ListDeliveries lists the workspace's deliveries matching f, newest (ReceiveTime) first,
// each page from an index (see the migration) whatever the filter. Listed deliveries say
// whether a request is kept but do not load it.
func (s *Store) ListDeliveries(ctx context.Context, workspaceID string, f store.DeliveryFilter, p store.Page) ([]*store.Delivery, string, error) {
	keys, err := pagetoken.Decode("dlv", p.Token, 2)
	if err != nil {
		return nil, "", err
	}
	size := pagetoken.Size(p)
	var w whereBuilder
	switch {
	case f.SubscriptionID != "":
		// The literal lets PostgreSQL use the partial indexes on subscription_id.
		w.add(`subscription_id = ? AND subscription_id <> '' AND workspace_id = ?`, f.SubscriptionID, workspaceID)
		if f.GlobalWebhookID != "" {
			w.add(`global_webhook_id = ?`, f.GlobalWebhookID) // nothing matches both
		}
	case f.GlobalWebhookID != "":
		w.add(`global_webhook_id = ? AND global_webhook_id <> '' AND workspace_id = ?`, f.GlobalWebhookID, workspaceID)
	default:
		w.add(`workspace_id = ?`, workspaceID)
	}
	if f.Outcome != "" {
		w.add(`outcome = ?`, f.Outcome)
	}
	if !f.Start.IsZero() {
		w.add(`receive_time >= ?`, f.Start)
	}
	if !f.End.IsZero() {
		w.add(`receive_time < ?`, f.End)
	}
	if keys != nil {
		w.add(`(receive_time, rid) < (?, ?)`, timeKey(keys[0]), keys[1])
	}
	limit := w.next(size + 1)
	rows, err := getAll(ctx, s, "list deliveries",
		`SELECT `+deliveryCols+`, `+hasRequestCol+` FROM deliveries WHERE `+w.b.String()+
			` ORDER BY receive_time DESC, rid DESC LIMIT `+limit,
		scanListedDelivery, w.args...)
	if err != nil {
		return nil, "", err
	}
	out, next := paginateByTime(rows, size, "dlv", func(d *store.Delivery) time.Time { return d.ReceiveTime })
	return out, next, nil
}

// maxDeliveryEvents bounds DeliveryEvents.
const maxDeliveryEvents = 1000

// DeliveryEvents returns up to limit events of delivery d in seq order, found through
// the receive_time index: a delivery's events carry its receive time (a replay keeps it).
func (s *Store) DeliveryEvents(ctx context.Context, workspaceID string, d *store.Delivery, limit int) ([]*store.Event, error) {
	if limit <= 0 || limit > maxDeliveryEvents {
		limit = maxDeliveryEvents
	}
	return getAll(ctx, s, "delivery events",
		`SELECT `+eventCols+` FROM events WHERE receive_time = $1 AND delivery_id = $2 AND workspace_id = $3 ORDER BY seq LIMIT $4`,
		scanEvent, tsSorted(d.ReceiveTime), d.ID, workspaceID, limit)
}

// timeKey is a page token's time key as a parameter: 0 (the zero time) sorts first.
func timeKey(us int64) pgtype.Timestamptz {
	if us == 0 {
		return pgtype.Timestamptz{Valid: true, InfinityModifier: pgtype.NegativeInfinity}
	}
	return pgtype.Timestamptz{Time: time.UnixMicro(us).UTC(), Valid: true}
}

const eventCols = `seq, id, workspace_id, connection_id, subscription_id, event_key, type, record::text, external_id, delivery_id, receive_time`

func scanEvent(sc scanner) (*store.Event, error) {
	e := &store.Event{}
	var record string
	var received pgtype.Timestamptz
	if err := sc.Scan(&e.Seq, &e.ID, &e.WorkspaceID, &e.ConnectionID, &e.SubscriptionID, &e.EventKey, &e.Type,
		&record, &e.ExternalID, &e.DeliveryID, &received); err != nil {
		return nil, err
	}
	e.ReceiveTime = fromTS(received)
	e.RecordJSON = record
	var err error
	if e.Record, err = value.DecodeStored([]byte(record)); err != nil {
		// Flagged, not failed: one damaged record never stops a stream or a list.
		e.Record, e.RecordJSON, e.RecordError = nil, "", fmt.Sprintf("%v: %v", store.ErrUnreadable, err)
	}
	return e, nil
}

// ListEvents returns up to limit events of the workspace with seq > afterSeq matching f,
// in seq order. A limit <= 0 means 100; limits above 10000 are capped. Seqs are assigned
// in commit order (see the package doc), so a reader that continues after the last seq
// it read never skips an event.
func (s *Store) ListEvents(ctx context.Context, workspaceID string, f store.EventFilter, afterSeq int64, limit int) ([]*store.Event, error) {
	switch {
	case limit <= 0:
		limit = defaultEventsLimit
	case limit > maxEventsLimit:
		limit = maxEventsLimit
	}
	var w whereBuilder
	w.add(`workspace_id = ? AND seq > ?`, workspaceID, afterSeq)
	for _, c := range []struct {
		col string
		vs  []string
	}{
		{"connection_id", f.ConnectionIDs},
		{"subscription_id", f.SubscriptionIDs},
		{"event_key", f.EventKeys},
		{"type", f.Types},
	} {
		if len(c.vs) > 0 {
			w.add(c.col+` = ANY(?)`, c.vs)
		}
	}
	lim := w.next(limit)
	return getAll(ctx, s, "list events",
		`SELECT `+eventCols+` FROM events WHERE `+w.b.String()+` ORDER BY seq LIMIT `+lim, scanEvent, w.args...)
}

// LastSeq returns the workspace's highest seq, 0 when it has no events.
func (s *Store) LastSeq(ctx context.Context, workspaceID string) (int64, error) {
	return getOne(ctx, s, "last seq", workspaceID,
		`SELECT coalesce(max(seq), 0) FROM events WHERE workspace_id = $1`,
		func(sc scanner) (int64, error) {
			var n int64
			err := sc.Scan(&n)
			return n, err
		}, workspaceID)
}

// GetCursor returns a consumer's committed cursor.
func (s *Store) GetCursor(ctx context.Context, workspaceID, consumer string) (int64, bool, error) {
	seq, err := getOne(ctx, s, "consumer", consumer,
		`SELECT cursor FROM consumers WHERE workspace_id = $1 AND name = $2`,
		func(sc scanner) (int64, error) {
			var n int64
			err := sc.Scan(&n)
			return n, err
		}, workspaceID, consumer)
	if errors.Is(err, store.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return seq, true, nil
}

// AckEvents moves the consumer's cursor to seq when seq is greater (creating the consumer).
func (s *Store) AckEvents(ctx context.Context, workspaceID, consumer string, seq int64) error {
	if _, err := s.exec(ctx, `INSERT INTO consumers (workspace_id, name, cursor, update_time) VALUES ($1, $2, $3, $4)
		ON CONFLICT (workspace_id, name) DO UPDATE SET cursor = excluded.cursor, update_time = excluded.update_time
		WHERE excluded.cursor > consumers.cursor`, workspaceID, consumer, seq, now()); err != nil {
		return s.opErr("ack "+consumer, err)
	}
	return nil
}

// pruneChunk bounds one prune statement, so a large prune never holds many row locks or
// one long transaction.
const pruneChunk = 1000

// Prune deletes deliveries received, idempotency keys stored and events received before
// the retention's cutoffs (a zero cutoff keeps everything), a chunk per statement.
func (s *Store) Prune(ctx context.Context, r store.Retention) (store.PruneResult, error) {
	var res store.PruneResult
	for _, p := range []struct {
		cutoff time.Time
		query  string
		count  *int64
	}{
		{r.DeliveriesBefore, `DELETE FROM deliveries WHERE rid IN (SELECT rid FROM deliveries WHERE receive_time < $1 LIMIT $2)`, &res.Deliveries},
		{r.IdempotencyKeysBefore, `DELETE FROM idempotency_keys WHERE (subscription_id, external_id) IN
			(SELECT subscription_id, external_id FROM idempotency_keys WHERE create_time < $1 LIMIT $2)`, &res.IdempotencyKeys},
		{r.EventsBefore, `DELETE FROM events WHERE (workspace_id, seq) IN
			(SELECT workspace_id, seq FROM events WHERE receive_time < $1 LIMIT $2)`, &res.Events},
	} {
		n, err := s.deleteChunked(ctx, p.query, p.cutoff)
		*p.count += n
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// deleteChunked runs query (a DELETE of at most $2 rows older than $1) until it deletes
// fewer than a chunk. A zero cutoff deletes nothing.
func (s *Store) deleteChunked(ctx context.Context, query string, cutoff time.Time) (int64, error) {
	if cutoff.IsZero() {
		return 0, nil
	}
	var total int64
	for {
		n, err := s.exec(ctx, query, cutoff, pruneChunk)
		if err != nil {
			return total, s.opErr("prune", err)
		}
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}
