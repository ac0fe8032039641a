package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/pagetoken"
)

const (
	// sqlInsertDeliveryHead inserts a delivery's sqlDeliveryCols columns (deliveryArgs),
	// its VALUES to follow: one row (sqlUpsertDelivery) or several (staged.go).
	sqlInsertDeliveryHead = `INSERT INTO deliveries (id, workspace_id, subscription_id, global_webhook_id, receive_time,
			status_code, outcome, error, event_count, request_size, selectors, replay_count, request_method,
			request_path, request_query, request_headers, request_body, event_seqs) VALUES `
	sqlDeliveryCols   = 18
	sqlUpsertDelivery = sqlInsertDeliveryHead + `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET subscription_id = excluded.subscription_id,
			global_webhook_id = excluded.global_webhook_id, receive_time = excluded.receive_time,
			status_code = excluded.status_code, outcome = excluded.outcome, error = excluded.error,
			event_count = excluded.event_count, request_size = excluded.request_size, selectors = excluded.selectors,
			replay_count = excluded.replay_count, request_method = excluded.request_method,
			request_path = excluded.request_path, request_query = excluded.request_query,
			request_headers = excluded.request_headers, request_body = excluded.request_body,
			event_seqs = ` + appendEventSeqs + `
		WHERE deliveries.workspace_id = excluded.workspace_id`
	// appendEventSeqs adds the runs of excluded.event_seqs to a delivery's (a replay's
	// events are the delivery's too).
	appendEventSeqs = `CASE WHEN excluded.event_seqs = '' THEN deliveries.event_seqs
			WHEN deliveries.event_seqs = '' THEN excluded.event_seqs
			ELSE deliveries.event_seqs || ',' || excluded.event_seqs END`
	sqlInsertKey = `INSERT OR IGNORE INTO idempotency_keys (subscription_id, external_id, create_time) VALUES (?, ?, ?)`
	// sqlInsertEventHead inserts an event's sqlInsertEventCols columns (wtx.insertEvent),
	// its VALUES to follow: one row (sqlInsertEvent) or several (staged.go).
	sqlInsertEventHead = `INSERT INTO events (seq, id, workspace_id, connection_id, subscription_id, event_key, type, record,
			external_id, delivery_id, receive_time) VALUES `
	sqlInsertEventCols   = 11
	sqlInsertEvent       = sqlInsertEventHead + `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlTouchSubscription = `UPDATE subscriptions SET last_event_time = MAX(last_event_time, ?) WHERE id = ? AND workspace_id = ?`
	sqlSetState          = `UPDATE subscriptions SET state = ?, update_time = ? WHERE id = ? AND workspace_id = ?`
	// sqlAckConsumer moves a consumer's cursor forward (AckEvents): a streaming consumer
	// acks every hundred events or so, so it is a hot statement too.
	sqlAckConsumer = `INSERT INTO consumers (workspace_id, name, cursor, update_time) VALUES (?, ?, ?, ?)
		ON CONFLICT (workspace_id, name) DO UPDATE SET cursor = excluded.cursor, update_time = excluded.update_time
		WHERE excluded.cursor > consumers.cursor`
)

// deliveryArgs encodes a delivery as the arguments of sqlUpsertDelivery.
func deliveryArgs(d *store.Delivery) ([]any, error) {
	selectors, err := encodeJSON(d.Selectors, d.Selectors == nil)
	if err != nil {
		return nil, fmt.Errorf("delivery %q selectors: %w", d.ID, err)
	}
	var method, path, query, headers any
	var body any
	if r := d.Request; r != nil {
		method, path, query, body = r.Method, r.Path, r.Query, r.Body
		if body == nil {
			body = []byte{}
		}
		if headers, err = encodeJSON(r.Headers, r.Headers == nil); err != nil {
			return nil, fmt.Errorf("delivery %q headers: %w", d.ID, err)
		}
	}
	return []any{d.ID, d.WorkspaceID, d.SubscriptionID, d.GlobalWebhookID, nanos(d.ReceiveTime), d.StatusCode,
		d.Outcome, d.Error, d.EventCount, d.RequestSize, selectors, d.ReplayCount, method, path, query, headers, body, ""}, nil
}

// Positions in deliveryArgs that CommitDelivery sets from what it inserted.
const (
	deliveryArgOutcome    = 6
	deliveryArgEventCount = 8
	deliveryArgEventSeqs  = 17
)

type encodedEvent struct {
	ev     *store.Event
	record string
}

// CommitDelivery writes the delivery, its events and state updates in one transaction
// (group-committed with concurrent writes) and returns once they are on disk.
//
// A state update of a subscription that no longer exists (deleted while its delivery was
// handled) is skipped: the events it came with are kept.
func (s *Store) CommitDelivery(ctx context.Context, c *store.DeliveryCommit) (*store.CommitResult, error) {
	return s.commitDelivery(ctx, c, nil)
}

// commitDelivery is CommitDelivery; more, when set, runs in the same transaction after
// the commit's own writes (the fetches a delivery asks for).
func (s *Store) commitDelivery(ctx context.Context, c *store.DeliveryCommit, more func(*wtx) error) (*store.CommitResult, error) {
	if c == nil {
		return nil, errors.New("sqlite: CommitDelivery: nil commit")
	}
	p, err := prepareCommit(c, "")
	if err != nil {
		return nil, err
	}
	var res *store.CommitResult
	err = s.write(ctx, func(t *wtx) error {
		res = nil
		r, err := s.runCommit(t, p)
		if err != nil {
			return err
		}
		if more != nil {
			if err := more(t); err != nil {
				return err
			}
		}
		res = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.c.Applied(res)
	return res, nil
}

// preparedCommit is a DeliveryCommit encoded on the caller's goroutine, to keep the
// writer's work short.
type preparedCommit struct {
	c      *store.DeliveryCommit
	dargs  []any // nil without a delivery
	events []encodedEvent
	states []preparedState
	t0     int64
}

type preparedState struct {
	id, ws string
	sealed any
	change func([]byte) ([]byte, error)
}

// prepareCommit encodes c; workspaceID is the workspace of its state updates when c has
// no delivery (else the delivery's, or the events').
func prepareCommit(c *store.DeliveryCommit, workspaceID string) (*preparedCommit, error) {
	p := &preparedCommit{c: c, t0: nanos(now())}
	if c.Delivery != nil {
		var err error
		if p.dargs, err = deliveryArgs(c.Delivery); err != nil {
			return nil, err
		}
		workspaceID = c.Delivery.WorkspaceID
	}
	p.events = make([]encodedEvent, len(c.Events))
	for i, ev := range c.Events {
		if workspaceID != "" && ev.WorkspaceID != workspaceID {
			return nil, fmt.Errorf("sqlite: CommitDelivery: event %q of workspace %q in a delivery of workspace %q", ev.ID, ev.WorkspaceID, workspaceID)
		}
		rec, err := encodeValue(ev.Record)
		if err != nil {
			return nil, fmt.Errorf("event %q record: %w", ev.ID, err)
		}
		p.events[i] = encodedEvent{ev, rec}
	}
	p.states = make([]preparedState, len(c.StateUpdates))
	for i, u := range c.StateUpdates {
		ws := workspaceID
		if ws == "" {
			ws = c.SubscriptionWorkspace(u.SubscriptionID)
		}
		p.states[i] = preparedState{u.SubscriptionID, ws, blob(u.State), u.Change}
	}
	return p, nil
}

// runCommit writes a prepared commit in transaction t.
func (s *Store) runCommit(t *wtx, p *preparedCommit) (*store.CommitResult, error) {
	c, t0 := p.c, p.t0
	r := &store.CommitResult{Seqs: make([]int64, len(p.events))}
	for i, e := range p.events {
		ev := e.ev
		if ev.ExternalID != "" {
			out, err := t.execStmt(s.hot.insertKey, ev.SubscriptionID, ev.ExternalID, t0)
			if err != nil {
				return nil, fmt.Errorf("sqlite: idempotency key: %w", err)
			}
			if n, err := out.RowsAffected(); err != nil {
				return nil, fmt.Errorf("sqlite: idempotency key: %w", err)
			} else if n == 0 {
				r.Duplicates++
				continue
			}
		}
		seq, err := t.insertEvent(ev, e.record)
		if err != nil {
			return nil, fmt.Errorf("sqlite: event %q: %w", ev.ID, err)
		}
		r.Seqs[i], r.MaxSeq = seq, seq
		r.Inserted++
		if ev.SubscriptionID != "" {
			at := nanos(ev.ReceiveTime)
			if at == 0 {
				at = t0
			}
			t.touch(ev.SubscriptionID, ev.WorkspaceID, at)
		}
	}
	if p.dargs != nil {
		// Written after the events, so that it records what was new, and where.
		p.dargs[deliveryArgEventSeqs] = formatSeqRuns(r.Seqs)
		args := p.dargs
		if r.Duplicates > 0 {
			args = slices.Clone(p.dargs)
			args[deliveryArgEventCount] = r.Inserted
			if r.Inserted == 0 && c.Delivery.Outcome == store.OutcomeOK {
				args[deliveryArgOutcome] = store.OutcomeDuplicate
			}
		}
		if c.Delivery.ReplayCount > 0 || !t.insertDelivery(args) {
			out, err := t.execStmt(s.hot.upsertDelivery, args...)
			if err != nil {
				return nil, fmt.Errorf("sqlite: delivery %q: %w", c.Delivery.ID, err)
			}
			if n, err := out.RowsAffected(); err != nil || n == 0 {
				// The id exists in another workspace: the conflict update's WHERE refused it.
				return nil, fmt.Errorf("delivery %q: %w", c.Delivery.ID, store.ErrAlreadyExists)
			}
		}
		// A replay replaces the delivery: the fetch summary of its earlier outcome goes.
		if c.Delivery.ReplayCount > 0 {
			if _, err := t.exec(`DELETE FROM delivery_fetches WHERE delivery_id = ?`, c.Delivery.ID); err != nil {
				return nil, fmt.Errorf("sqlite: delivery %q: %w", c.Delivery.ID, err)
			}
		}
	}
	for _, u := range p.states {
		sealed := u.sealed
		if u.change != nil {
			stored, found, err := storedState(t, u.id, u.ws)
			if err != nil {
				return nil, err
			}
			if !found {
				continue // deleted while its delivery was handled
			}
			b, err := u.change(stored)
			if err != nil {
				return nil, fmt.Errorf("subscription %q state: %w", u.id, err)
			}
			sealed = blob(b)
		}
		if _, err := t.execStmt(s.hot.setState, sealed, t0, u.id, u.ws); err != nil {
			return nil, fmt.Errorf("sqlite: subscription %q state: %w", u.id, err)
		}
		t.changedSubscription(u.id)
	}
	return r, nil
}

const (
	// deliveryCols are read from deliveries joined with delivery_fetches (deliveryFrom):
	// a delivery's fetch summary lives in a table of its own, so that the deliveries table
	// keeps its kept body in its last column.
	deliveryCols = `rid, id, workspace_id, subscription_id, global_webhook_id, receive_time, status_code, outcome, error,
	event_count, request_size, selectors, replay_count, fetch_status, fetch_attempts`
	requestCols = `request_method, request_path, request_query, request_headers, request_body`
	// hasRequestCol reads no request column but the method: a page never loads a body.
	hasRequestCol = `request_method IS NOT NULL`
	// fetchJoin adds a delivery's fetch summary (fetch_status, fetch_attempts), one
	// primary key look-up per delivery read; delivery_fetches names its columns apart
	// from deliveries', so that the conditions on deliveries need no table name.
	fetchJoin = `LEFT JOIN delivery_fetches ON delivery_fetches.delivery_id = deliveries.id`
)

// scanDelivery scans deliveryCols and requestCols.
func scanDelivery(sc scanner) (keyed[*store.Delivery], error) {
	d := &store.Delivery{}
	var rid, received int64
	var selectors sql.NullString
	var method, path, query, headers sql.NullString
	var body []byte
	var fetchStatus sql.NullString
	var fetchAttempts sql.NullInt64
	if err := sc.Scan(&rid, &d.ID, &d.WorkspaceID, &d.SubscriptionID, &d.GlobalWebhookID, &received, &d.StatusCode,
		&d.Outcome, &d.Error, &d.EventCount, &d.RequestSize, &selectors, &d.ReplayCount, &fetchStatus, &fetchAttempts,
		&method, &path, &query, &headers, &body); err != nil {
		return keyed[*store.Delivery]{}, err
	}
	d.FetchStatus, d.FetchAttempts = fetchStatus.String, int(fetchAttempts.Int64)
	if err := decodeDelivery(d, received, selectors); err != nil {
		return keyed[*store.Delivery]{key: rid, v: d}, err
	}
	if method.Valid {
		d.HasRequest = true
		d.Request = &store.RawRequest{Method: method.String, Path: path.String, Query: query.String, Body: body}
		var err error
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
	var rid, received int64
	var selectors sql.NullString
	var fetchStatus sql.NullString
	var fetchAttempts sql.NullInt64
	if err := sc.Scan(&rid, &d.ID, &d.WorkspaceID, &d.SubscriptionID, &d.GlobalWebhookID, &received, &d.StatusCode,
		&d.Outcome, &d.Error, &d.EventCount, &d.RequestSize, &selectors, &d.ReplayCount, &fetchStatus, &fetchAttempts,
		&d.HasRequest); err != nil {
		return keyed[*store.Delivery]{}, err
	}
	d.FetchStatus, d.FetchAttempts = fetchStatus.String, int(fetchAttempts.Int64)
	if err := decodeDelivery(d, received, selectors); err != nil {
		return keyed[*store.Delivery]{key: rid, v: d}, err
	}
	return keyed[*store.Delivery]{key: rid, v: d}, nil
}

func decodeDelivery(d *store.Delivery, received int64, selectors sql.NullString) error {
	d.ReceiveTime = fromNanos(received)
	var err error
	if d.Selectors, err = decodeJSON[[]string](selectors); err != nil {
		return unreadable(fmt.Sprintf("delivery %q selectors", d.ID), err)
	}
	return nil
}

// GetDelivery returns a delivery of the workspace, with its kept request.
func (s *Store) GetDelivery(ctx context.Context, workspaceID, id string) (*store.Delivery, error) {
	k, err := getOne(ctx, s, "delivery", id,
		`SELECT `+deliveryCols+`, `+requestCols+` FROM deliveries `+fetchJoin+` WHERE id = ? AND workspace_id = ?`,
		scanDelivery, id, workspaceID)
	return k.v, err
}

// ListDeliveries lists the workspace's deliveries matching f, newest (ReceiveTime) first,
// without their kept requests (HasRequest says which have one).
//
// Every filter pages from an index whose columns are the filter's equalities followed by
// receive_time (and the rowid), so a page reads only its own rows, however many
// deliveries the workspace has: deliveries_workspace_time, deliveries_workspace_outcome_time,
// deliveries_subscription_time, deliveries_subscription_outcome_time,
// deliveries_global_time and deliveries_global_outcome_time (TestDeliveryQueryPlans
// checks each).
func (s *Store) ListDeliveries(ctx context.Context, workspaceID string, f store.DeliveryFilter, p store.Page) ([]*store.Delivery, string, error) {
	keys, err := pagetoken.Decode("dlv", p.Token, 2)
	if err != nil {
		return nil, "", err
	}
	size := pagetoken.Size(p)
	index, where, args := deliveryWhere(workspaceID, f, keys)
	args = append(args, size+1)
	rows, err := getAll(ctx, s, "list deliveries", listDeliveriesQuery(index, where), true, scanListedDelivery, args...)
	if err != nil {
		return nil, "", err
	}
	out, next := paginateByTime(rows, size, "dlv", func(d *store.Delivery) time.Time { return d.ReceiveTime })
	return out, next, nil
}

func listDeliveriesQuery(index, where string) string {
	return `SELECT ` + deliveryCols + `, ` + hasRequestCol + ` FROM deliveries INDEXED BY ` + index + ` ` + fetchJoin +
		` WHERE ` + where + ` ORDER BY receive_time DESC, rid DESC LIMIT ?`
}

// deliveryWhere builds ListDeliveries' condition and names the index it pages from; keys
// are a page token's (receive time, rid) to continue before.
func deliveryWhere(workspaceID string, f store.DeliveryFilter, keys []int64) (index, cond string, args []any) {
	var where strings.Builder
	// The literals let SQLite use the partial indexes on subscription_id and
	// global_webhook_id; a workspace check on the row keeps workspaces apart.
	switch {
	case f.SubscriptionID != "":
		index = "deliveries_subscription_time"
		where.WriteString(`subscription_id = ? AND subscription_id <> '' AND workspace_id = ?`)
		args = append(args, f.SubscriptionID, workspaceID)
	case f.GlobalWebhookID != "":
		index = "deliveries_global_time"
		where.WriteString(`global_webhook_id = ? AND global_webhook_id <> '' AND workspace_id = ?`)
		args = append(args, f.GlobalWebhookID, workspaceID)
	default:
		index = "deliveries_workspace_time"
		where.WriteString(`workspace_id = ?`)
		args = append(args, workspaceID)
	}
	// The outcome indexes hold no OK delivery (nearly all of them): the filter OK pages
	// from the index without outcome, whose rows nearly all match; the other outcomes
	// from the outcome index, which the literal lets SQLite use.
	if f.Outcome != "" && f.Outcome != store.OutcomeOK {
		index = strings.TrimSuffix(index, "_time") + "_outcome_time"
	}
	if f.SubscriptionID != "" && f.GlobalWebhookID != "" {
		// A delivery arrives on one or the other: nothing matches both.
		where.WriteString(` AND global_webhook_id = ?`)
		args = append(args, f.GlobalWebhookID)
	}
	if f.Outcome != "" {
		where.WriteString(` AND outcome = ?`)
		args = append(args, f.Outcome)
		if f.Outcome != store.OutcomeOK {
			where.WriteString(` AND outcome <> 'OK'`)
		}
	}
	if !f.Start.IsZero() {
		where.WriteString(` AND receive_time >= ?`)
		args = append(args, nanos(f.Start))
	}
	if !f.End.IsZero() {
		where.WriteString(` AND receive_time < ?`)
		args = append(args, nanos(f.End))
	}
	if keys != nil {
		where.WriteString(` AND (receive_time, rid) < (?, ?)`)
		args = append(args, keys[0], keys[1])
	}
	return index, where.String(), args
}

// maxDeliveryEvents bounds DeliveryEvents.
const maxDeliveryEvents = 1000

// DeliveryEvents returns up to limit events of delivery d in seq order, read by seq from
// the runs its row lists (event_seqs, one run per commit that stored events for it).
func (s *Store) DeliveryEvents(ctx context.Context, workspaceID string, d *store.Delivery, limit int) ([]*store.Event, error) {
	if limit <= 0 || limit > maxDeliveryEvents {
		limit = maxDeliveryEvents
	}
	runs, err := getOne(ctx, s, "delivery", d.ID, `SELECT event_seqs FROM deliveries WHERE id = ? AND workspace_id = ?`,
		func(sc scanner) (string, error) {
			var v string
			err := sc.Scan(&v)
			return v, err
		}, d.ID, workspaceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // another workspace's, or deleted since it was read
	}
	if err != nil {
		return nil, err
	}
	var out []*store.Event
	for lo, hi := range seqRuns(runs) {
		evs, err := getAll(ctx, s, "delivery events", deliveryEventsQuery, true, scanEvent, lo, hi, d.ID, workspaceID, limit-len(out))
		if err != nil {
			return nil, err
		}
		if out = append(out, evs...); len(out) >= limit {
			break
		}
	}
	return out, nil
}

const deliveryEventsQuery = `SELECT ` + eventCols + ` FROM events
	WHERE seq BETWEEN ? AND ? AND delivery_id = ? AND workspace_id = ? ORDER BY seq LIMIT ?`

// formatSeqRuns writes the seqs of a commit's events (ascending, zeros for the
// duplicates it did not store) as runs of consecutive seqs: "12-14", "90", "12-14,16".
func formatSeqRuns(seqs []int64) string {
	var b []byte
	var lo, hi int64
	flush := func() {
		if lo == 0 {
			return
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, lo, 10)
		if hi != lo {
			b = append(b, '-')
			b = strconv.AppendInt(b, hi, 10)
		}
	}
	for _, seq := range seqs {
		switch {
		case seq == 0:
		case lo != 0 && seq == hi+1:
			hi = seq
		default:
			flush()
			lo, hi = seq, seq
		}
	}
	flush()
	return string(b)
}

// seqRuns yields the runs of event_seqs (formatSeqRuns's, joined by commas), first to
// last; it stops at the first run it cannot read.
func seqRuns(s string) iter.Seq2[int64, int64] {
	return func(yield func(lo, hi int64) bool) {
		for run := range strings.SplitSeq(s, ",") {
			a, b, isRange := strings.Cut(run, "-")
			lo, err := strconv.ParseInt(a, 10, 64)
			if err != nil {
				return
			}
			hi := lo
			if isRange {
				if hi, err = strconv.ParseInt(b, 10, 64); err != nil {
					return
				}
			}
			if !yield(lo, hi) {
				return
			}
		}
	}
}

const eventCols = `seq, id, workspace_id, connection_id, subscription_id, event_key, type, record, external_id, delivery_id, receive_time`

func scanEvent(sc scanner) (*store.Event, error) {
	e := &store.Event{}
	var record string
	var received int64
	if err := sc.Scan(&e.Seq, &e.ID, &e.WorkspaceID, &e.ConnectionID, &e.SubscriptionID, &e.EventKey, &e.Type,
		&record, &e.ExternalID, &e.DeliveryID, &received); err != nil {
		return nil, err
	}
	e.ReceiveTime = fromNanos(received)
	setRecord(e, record)
	return e, nil
}

// setRecord sets the event's record from its stored JSON text, or, when that cannot be
// read, its RecordError.
func setRecord(e *store.Event, record string) {
	e.RecordJSON = record
	var err error
	if e.Record, err = value.DecodeStored([]byte(record)); err != nil {
		// Flagged, not failed: one damaged record never stops a stream or a list.
		e.Record, e.RecordJSON, e.RecordError = nil, "", fmt.Sprintf("%v: %v", store.ErrUnreadable, err)
	}
}

// ListEvents returns up to limit events of the workspace with seq > afterSeq matching f,
// in seq order. A limit <= 0 means 100; limits above 10000 are capped.
//
// The newest events are read from the tail (tail.go), older ones from the database.
func (s *Store) ListEvents(ctx context.Context, workspaceID string, f store.EventFilter, afterSeq int64, limit int) ([]*store.Event, error) {
	return s.listEvents(ctx, workspaceID, f, afterSeq, limit, s.tail)
}

// listEvents is ListEvents reading the tail t; a nil t reads the database alone.
func (s *Store) listEvents(ctx context.Context, workspaceID string, f store.EventFilter, after int64, limit int, t *tail) ([]*store.Event, error) {
	switch {
	case limit <= 0:
		limit = defaultEventsLimit
	case limit > maxEventsLimit:
		limit = maxEventsLimit
	}
	if t == nil {
		return s.listStoredEvents(ctx, workspaceID, &f, after, 0, limit)
	}
	// What the database would say: closed, or the caller's context ended.
	if s.isClosed.Load() {
		return nil, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*store.Event
	fromDB := false
	for {
		n := len(out)
		var served bool
		var lo int64
		out, served, lo = t.list(workspaceID, &f, after, limit-n, out)
		if served {
			// The tail's records are the JSON this process encoded: a caller that reads
			// only that gets it as it is, with no decoding to check it.
			if !f.JSONRecords {
				for _, e := range out[n:] {
					setRecord(e, e.RecordJSON)
				}
			}
			t.counted(!fromDB)
			return out, nil
		}
		// The seqs below lo from the database (all of them when lo is unknown), then the
		// tail's from lo on: every event of the result as of the tail's last update.
		fromDB = true
		rows, err := s.listStoredEvents(ctx, workspaceID, &f, after, lo, limit-n)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
		if lo == 0 || len(out) == limit {
			t.counted(false)
			return out, nil
		}
		after = lo - 1 // every matching event below lo is in out
	}
}

// listStoredEvents reads ListEvents' events from the database, those with seq < below
// only when below > 0.
func (s *Store) listStoredEvents(ctx context.Context, workspaceID string, f *store.EventFilter, after, below int64, limit int) ([]*store.Event, error) {
	var where strings.Builder
	where.WriteString(`workspace_id = ? AND seq > ?`)
	args := []any{workspaceID, after}
	if below > 0 {
		where.WriteString(` AND seq < ?`)
		args = append(args, below)
	}
	// The statement is cached only for unfiltered reads (the stream's common case).
	cache := true
	for _, c := range []struct {
		col string
		vs  []string
	}{
		{"connection_id", f.ConnectionIDs},
		{"subscription_id", f.SubscriptionIDs},
		{"event_key", f.EventKeys},
		{"type", f.Types},
	} {
		if len(c.vs) == 0 {
			continue
		}
		cache = false
		where.WriteString(` AND ` + c.col + ` IN (` + placeholders(len(c.vs)) + `)`)
		for _, v := range c.vs {
			args = append(args, v)
		}
	}
	args = append(args, limit)
	return getAll(ctx, s, "list events",
		`SELECT `+eventCols+` FROM events WHERE `+where.String()+` ORDER BY seq LIMIT ?`, cache, scanEvent, args...)
}

// LastSeq returns the workspace's highest seq, 0 when it has no events: the tail's
// newest event of the workspace, else the database's newest below the tail, so that
// it never names an event ListEvents could not return yet.
func (s *Store) LastSeq(ctx context.Context, workspaceID string) (int64, error) {
	return s.lastSeq(ctx, workspaceID, s.tail)
}

// lastSeq is LastSeq reading the tail t; a nil t reads the database alone.
func (s *Store) lastSeq(ctx context.Context, workspaceID string, t *tail) (int64, error) {
	seq, ok, lo := t.lastSeq(workspaceID)
	if ok {
		if s.isClosed.Load() {
			return 0, store.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return seq, nil
	}
	query, args := `SELECT seq FROM events WHERE workspace_id = ? ORDER BY seq DESC LIMIT 1`, []any{workspaceID}
	if lo > 0 {
		query, args = `SELECT seq FROM events WHERE workspace_id = ? AND seq < ? ORDER BY seq DESC LIMIT 1`, []any{workspaceID, lo}
	}
	seqs, err := getAll(ctx, s, "last seq", query, true,
		func(sc scanner) (int64, error) {
			var n int64
			err := sc.Scan(&n)
			return n, err
		}, args...)
	if err != nil || len(seqs) == 0 {
		return 0, err
	}
	return seqs[0], nil
}

// GetCursor returns a consumer's committed cursor.
func (s *Store) GetCursor(ctx context.Context, workspaceID, consumer string) (int64, bool, error) {
	seq, err := getOne(ctx, s, "consumer", consumer,
		`SELECT cursor FROM consumers WHERE workspace_id = ? AND name = ?`,
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
	t0 := nanos(now())
	return s.write(ctx, func(t *wtx) error {
		_, err := t.execStmt(s.hot.ackConsumer, workspaceID, consumer, seq, t0)
		if err != nil {
			return fmt.Errorf("sqlite: ack %q: %w", consumer, err)
		}
		return nil
	})
}

// pruneChunk bounds one prune transaction, so the writer interleaves commits with a
// large prune.
const pruneChunk = 1000

// Prune deletes deliveries received, idempotency keys stored and events received before
// the retention's cutoffs (a zero cutoff keeps everything), in chunks of one transaction.
//
// Deliveries go in rid order and events in seq order (the order they were first committed
// in) up to the first one still within the retention: there is no index on their receive
// time, which would cost every commit a page, and finding that first one reads only the
// rows to be deleted. A delivery committed out of receive-time order goes with its
// neighbours, a moment after its cutoff; so does an event (a replay's keeps its delivery's
// receive time, and goes with the events committed around the replay).
func (s *Store) Prune(ctx context.Context, r store.Retention) (store.PruneResult, error) {
	var res store.PruneResult
	// The rid of the oldest delivery kept, the seq of the oldest event kept.
	deliveriesBefore, err := s.firstKept(ctx, "deliveries", "rid", r.DeliveriesBefore)
	if err != nil {
		return res, err
	}
	eventsBefore, err := s.firstKept(ctx, "events", "seq", r.EventsBefore)
	if err != nil {
		return res, err
	}
	for _, p := range []struct {
		cutoff  int64
		query   string
		count   *int64
		deleted func(t *wtx, cutoff int64)
	}{
		{deliveriesBefore, `DELETE FROM deliveries WHERE rid IN (SELECT rid FROM deliveries WHERE rid < ? ORDER BY rid LIMIT ?)`, &res.Deliveries, nil},
		// Fetch summaries go with their deliveries (not counted apart).
		{nanos(r.DeliveriesBefore), `DELETE FROM delivery_fetches WHERE delivery_id IN
			(SELECT delivery_id FROM delivery_fetches WHERE fetch_time < ? LIMIT ?)`, new(int64), nil},
		{nanos(r.IdempotencyKeysBefore), `DELETE FROM idempotency_keys WHERE (subscription_id, external_id) IN
			(SELECT subscription_id, external_id FROM idempotency_keys WHERE create_time < ? LIMIT ?)`, &res.IdempotencyKeys, nil},
		{eventsBefore, `DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE seq < ? ORDER BY seq LIMIT ?)`, &res.Events,
			(*wtx).prunedEvents},
	} {
		n, err := s.deleteChunked(ctx, p.query, p.cutoff, p.deleted)
		*p.count += n
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// firstKept returns the key (rid, seq) of the first row of table, in key order, received at
// or after cutoff: rows are deleted in key order up to it, and finding it reads only the
// rows to be deleted. It is one above the highest key when every row is older, and 0 (delete
// nothing) for a zero cutoff.
func (s *Store) firstKept(ctx context.Context, table, key string, cutoff time.Time) (int64, error) {
	if cutoff.IsZero() {
		return 0, nil
	}
	if s.isClosed.Load() {
		return 0, store.ErrClosed
	}
	var first int64
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(
		(SELECT `+key+` FROM `+table+` WHERE receive_time >= ? ORDER BY `+key+` LIMIT 1),
		(SELECT COALESCE(MAX(`+key+`), 0) + 1 FROM `+table+`))`, nanos(cutoff)).Scan(&first)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune: %w", err)
	}
	return first, nil
}

// deleteChunked runs query (a DELETE of at most ? rows older than ?) with cutoff until it
// deletes fewer than a chunk, one short transaction per chunk so the writer is never held
// for long. A zero cutoff deletes nothing. deleted, when set, is told of every chunk that
// deleted rows, in its transaction.
func (s *Store) deleteChunked(ctx context.Context, query string, cutoff int64, deleted func(t *wtx, cutoff int64)) (int64, error) {
	if cutoff == 0 {
		return 0, nil
	}
	var total int64
	for {
		var n int64
		err := s.write(ctx, func(t *wtx) error {
			out, err := t.exec(query, cutoff, pruneChunk)
			if err != nil {
				return fmt.Errorf("sqlite: prune: %w", err)
			}
			if n, err = out.RowsAffected(); err != nil {
				return fmt.Errorf("sqlite: prune: %w", err)
			}
			if n > 0 && deleted != nil {
				deleted(t, cutoff)
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}
