package sqlite

import (
	"slices"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookmap/hookmap/server/store"
)

// The tail: the newest committed events, kept in memory to serve ListEvents and LastSeq.
//
// A consumer that is caught up reads, after nearly every commit, the few events just
// committed: ListEvents(ws, filter, after, limit) with after close to the newest seq. The
// tail serves those reads from memory.
//
// What is cached: the events of every workspace, as stored (the record's JSON text, the
// receive time in nanoseconds), in seq order, appended by the writer after the COMMIT
// that inserted them and before it answers that transaction's callers. The writer
// gives seqs (wtx.insertEvent), each above every seq given before, in commit order, so the tail is a run of the newest
// committed seqs.
//
// Coverage rule: the tail knows lo, the lowest seq it holds completely: every event with
// seq >= lo that was committed and not deleted is in the tail. A ListEvents with
// after+1 >= lo is served from memory; one reaching further back reads the database for
// the seqs below lo and the tail for the rest. At Open the tail is empty with lo one
// above the highest seq the table ever had, so a consumer that is caught up is served
// from memory from the first commit on. Evicting the oldest event (the tail holds at most
// tailMaxEvents events and tailMaxBytes of their strings) raises lo past it.
//
// Why it is coherent: the store is the file's only writer and every write goes through
// the writer goroutine, so every statement that changes the events table is known here:
//
//   - an insert (CommitDelivery, FinishFetch, SetConnectionAuth) is collected on its
//     transaction and appended only once the COMMIT succeeded: a batch rolled back and
//     run again without its failing op appends only what its second run committed, and
//     a delivery committed as a duplicate inserts no event;
//   - Prune deletes events received before a cutoff (any of them, a chunk at a time): the
//     tail drops its oldest events while they were received before the cutoff (which
//     raises lo past them), and when one received before the cutoff remains behind a
//     newer one (receive times out of seq order), it empties itself, lo moving past its
//     newest seq;
//   - a transaction that may have changed events in ways it does not say (changedAll: a
//     raw statement), or whose COMMIT failed (what the database kept is then unknown),
//     empties the tail and leaves lo unknown: every read goes to the database until the
//     next commit that inserts events, whose lowest seq becomes lo (the writer gives it a
//     seq above every seq given before, that failed COMMIT's included).
//
// No other statement deletes or updates events: deleting a subscription or a connection
// keeps its events (the table has no foreign key), workspaces are never deleted, and
// migrations run before Open builds the tail.
//
// Reads never see a commit the tail has not applied yet: LastSeq answers from the tail
// too (the workspace's newest event in it, or the database's newest below lo), and a read
// that goes to the database for the seqs below lo takes the rest from the tail. Between
// a COMMIT and the tail's update a database read could see events the tail has not got
// yet; mixing the two would let a reader trust a LastSeq that ListEvents cannot yet
// reach (the destination worker moves its cursor to LastSeq).
//
// Every read returns fresh events; each record is decoded from the stored JSON per read
// (value.DecodeStored), so callers may change what they get.

// Bounds of the tail. Beyond either the oldest events are evicted (and lo raised).
const (
	// tailMaxEvents is the most events the tail holds (a power of two: the ring's size).
	tailMaxEvents = 1 << 14
	// tailMaxBytes bounds the estimated memory of the events held: their strings (the
	// record's JSON text mostly) and tailEventOverhead each.
	tailMaxBytes = 8 << 20
	// tailEventOverhead is counted for each event beside its strings (its slot in the ring).
	tailEventOverhead = 176
	// tailMinRing is the ring's first size; it doubles up to tailMaxEvents.
	tailMinRing = 64
)

// tailEvent is an event as stored.
type tailEvent struct {
	seq, received                                           int64
	id, ws, conn, sub, key, typ, record, external, delivery string
}

func (e *tailEvent) size() int64 {
	return tailEventOverhead + int64(len(e.id)+len(e.ws)+len(e.conn)+len(e.sub)+len(e.key)+len(e.typ)+
		len(e.record)+len(e.external)+len(e.delivery))
}

// matches reports whether e is one of ListEvents' results for workspace ws and filter f
// (the SQL path's equalities and IN lists).
func (e *tailEvent) matches(ws string, f *store.EventFilter) bool {
	in := func(vs []string, v string) bool { return len(vs) == 0 || slices.Contains(vs, v) }
	return e.ws == ws && in(f.ConnectionIDs, e.conn) && in(f.SubscriptionIDs, e.sub) &&
		in(f.EventKeys, e.key) && in(f.Types, e.typ)
}

// event returns a new store.Event of e, its record not decoded yet (see setRecord).
func (e *tailEvent) event() *store.Event {
	return &store.Event{
		Seq: e.seq, ID: e.id, WorkspaceID: e.ws, ConnectionID: e.conn, SubscriptionID: e.sub, EventKey: e.key,
		Type: e.typ, ExternalID: e.external, DeliveryID: e.delivery, ReceiveTime: fromNanos(e.received),
	}
}

// tailChanges is what a write transaction did to the events table, in order, applied to
// the tail once it has committed (a rolled-back transaction's are dropped with it).
type tailChanges struct {
	ops []tailOp
}

// tailOp is an inserted event, or (pruneBefore > 0) a deletion of events whose seq is
// below pruneBefore.
type tailOp struct {
	ev          tailEvent
	pruneBefore int64
}

// insertedEvent records that t inserted ev with seq, its record encoded as record.
func (w *wtx) insertedEvent(seq int64, ev *store.Event, record string) {
	w.tail.ops = append(w.tail.ops, tailOp{ev: tailEvent{
		seq: seq, received: nanos(ev.ReceiveTime), id: ev.ID, ws: ev.WorkspaceID, conn: ev.ConnectionID,
		sub: ev.SubscriptionID, key: ev.EventKey, typ: ev.Type, record: record, external: ev.ExternalID,
		delivery: ev.DeliveryID,
	}})
}

// prunedEvents records that t deleted events whose seq is below cutoff (the oldest of
// them, or all).
func (w *wtx) prunedEvents(cutoff int64) {
	w.tail.ops = append(w.tail.ops, tailOp{pruneBefore: cutoff})
}

// tail is the store's newest committed events. A nil *tail holds nothing and every read
// goes to the database.
type tail struct {
	mu sync.RWMutex
	// known: lo is known. False after a failed COMMIT or a raw statement, until the next
	// commit of events; the tail is empty meanwhile.
	known bool
	// off: the writer saw seqs out of order, which the writer's seqs rule out; the tail then
	// stays empty and unknown for good.
	off bool
	lo  int64
	// ring holds the events, oldest at head; its length is a power of two.
	ring    []tailEvent
	head, n int
	bytes   int64
	// newest is each workspace's highest seq in the tail.
	newest map[string]int64

	hitVec, missVec prometheus.Counter // nil without a registry
}

// newTail returns an empty tail whose events start at lo (one above the table's highest
// seq), or nil, holding nothing, when off.
func newTail(lo int64, m *metrics, off bool) *tail {
	if off {
		return nil
	}
	t := &tail{known: true, lo: lo, newest: map[string]int64{}}
	if m.cacheLookups != nil {
		t.hitVec = m.cacheLookups.WithLabelValues("events", "hit")
		t.missVec = m.cacheLookups.WithLabelValues("events", "miss")
	}
	return t
}

// at returns the i-th oldest event. t.mu is held.
func (t *tail) at(i int) *tailEvent { return &t.ring[(t.head+i)&(len(t.ring)-1)] }

// next is the seq above every seq the tail covers: the newest held, or lo when empty.
// t.mu is held.
func (t *tail) next() int64 {
	if t.n == 0 {
		return t.lo
	}
	return t.at(t.n-1).seq + 1
}

// apply updates the tail with what a committed transaction did; all says that it may
// have changed events it did not record (changes.all). The writer calls it after the
// COMMIT and before it answers the transaction's callers.
func (t *tail) apply(ch *tailChanges, all bool) {
	if t == nil || (len(ch.ops) == 0 && !all) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if all {
		t.forgetLocked()
		return
	}
	for i := range ch.ops {
		op := &ch.ops[i]
		if op.pruneBefore != 0 {
			t.prune(op.pruneBefore)
		} else {
			t.push(&op.ev)
		}
	}
}

// forget empties the tail and makes lo unknown: the writer does not know what the
// database holds (a failed COMMIT).
func (t *tail) forget() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.forgetLocked()
	t.mu.Unlock()
}

func (t *tail) forgetLocked() {
	t.empty()
	t.known = false
}

// empty drops every event, lo moving past the newest. t.mu is held.
func (t *tail) empty() {
	t.lo = t.next()
	clear(t.ring)
	t.head, t.n, t.bytes = 0, 0, 0
	clear(t.newest)
}

// push appends a committed event, evicting the oldest beyond the bounds. t.mu is held.
func (t *tail) push(e *tailEvent) {
	switch {
	case t.off:
		return
	case !t.known:
		// Every seq committed before is below e's (the writer's seqs), and the tail is empty.
		t.known, t.lo = true, e.seq
	case e.seq < t.next():
		t.forgetLocked()
		t.off = true
		return
	}
	if t.n == len(t.ring) {
		if len(t.ring) < tailMaxEvents {
			t.grow()
		} else {
			t.evict()
		}
	}
	*t.at(t.n) = *e
	t.n++
	t.bytes += e.size()
	t.newest[e.ws] = e.seq
	for t.n > 0 && t.bytes > tailMaxBytes {
		t.evict()
	}
}

// grow doubles the ring. t.mu is held.
func (t *tail) grow() {
	ring := make([]tailEvent, max(tailMinRing, 2*len(t.ring)))
	for i := range t.n {
		ring[i] = *t.at(i)
	}
	t.ring, t.head = ring, 0
}

// evict drops the oldest event and raises lo past it. t.mu is held, t.n > 0.
func (t *tail) evict() {
	e := t.at(0)
	t.lo = e.seq + 1
	t.bytes -= e.size()
	if t.newest[e.ws] == e.seq {
		delete(t.newest, e.ws)
	}
	*e = tailEvent{}
	t.head = (t.head + 1) & (len(t.ring) - 1)
	t.n--
}

// prune follows a deletion of (the oldest of) the events whose seq is below cutoff: the
// tail keeps none of them (reads below lo go to the database, which has what is left).
// t.mu is held.
func (t *tail) prune(cutoff int64) {
	for t.n > 0 && t.at(0).seq < cutoff {
		t.evict()
	}
}

// list returns the events of workspace ws matching f with seq > after, at most limit, in
// seq order, appended to out, their records not decoded yet, when the tail covers them
// (served). Otherwise it returns lo, the seq below which the caller reads the database
// before asking again from lo-1, or 0 when lo is unknown and the database has to answer
// alone.
func (t *tail) list(ws string, f *store.EventFilter, after int64, limit int, out []*store.Event) (_ []*store.Event, served bool, lo int64) {
	if t == nil {
		return out, false, 0
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !t.known {
		return out, false, 0
	}
	if after < t.lo-1 {
		return out, false, t.lo
	}
	if newest, ok := t.newest[ws]; !ok || newest <= after {
		return out, true, 0
	}
	i := sort.Search(t.n, func(i int) bool { return t.at(i).seq > after })
	for got := 0; i < t.n && got < limit; i++ {
		if e := t.at(i); e.matches(ws, f) {
			ev := e.event()
			ev.RecordJSON = e.record // decoded by the caller, outside the lock
			out = append(out, ev)
			got++
		}
	}
	return out, true, 0
}

// lastSeq returns the workspace's newest seq when the tail holds one of its events (ok);
// otherwise lo, below which the database's newest is the answer, or 0 when lo is unknown.
func (t *tail) lastSeq(ws string) (seq int64, ok bool, lo int64) {
	if t == nil {
		return 0, false, 0
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !t.known {
		return 0, false, 0
	}
	if seq, ok := t.newest[ws]; ok {
		return seq, true, 0
	}
	return 0, false, t.lo
}

// counted records a ListEvents served from memory alone (hit) or not (miss).
func (t *tail) counted(hit bool) {
	if t == nil || t.hitVec == nil {
		return
	}
	if hit {
		t.hitVec.Inc()
	} else {
		t.missVec.Inc()
	}
}

// state returns lo, whether it is known, and the number of events held (for tests).
func (t *tail) state() (lo int64, known bool, n int) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.lo, t.known, t.n
}
