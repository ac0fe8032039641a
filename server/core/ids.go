package core

import (
	"crypto/rand"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// newTimeID returns a UUID version 7 (RFC 9562): unique like a random UUID, but ordered by
// creation time (to the millisecond, then by a counter within the process). Deliveries,
// events and fetches are keyed by such ids, so the store's indexes on them grow at their
// right edge: a commit appends to the last page of each index instead of writing one
// random page per new record.
//
// It is uuid.NewV7's layout and clock (the millisecond, then a 12-bit sequence from the
// sub-millisecond time, moved forward when the clock did not), made without its lock and
// without reading the random bytes through an io.Reader, which put them on the heap: the
// receiver makes two such ids per webhook.
func newTimeID() string {
	var id uuid.UUID
	_, _ = rand.Read(id[8:]) // crypto/rand.Read never fails (it crashes the program instead)
	t := v7Time()
	ms, seq := t>>12, t&0xfff
	id[0], id[1], id[2], id[3], id[4], id[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	id[6] = 0x70 | byte(seq>>8)&0x0f // version 7
	id[7] = byte(seq)
	id[8] = id[8]&0x3f | 0x80 // variant 10
	return id.String()
}

// lastV7 is the last v7Time given.
var lastV7 atomic.Int64

// v7Time returns the time of a new id: the Unix millisecond << 12 | a sequence (the
// sub-millisecond time in units of 256ns), always above the last one given.
func v7Time() int64 {
	nano := time.Now().UnixNano()
	ms := nano / int64(time.Millisecond)
	now := ms<<12 | (nano-ms*int64(time.Millisecond))>>8
	for {
		last := lastV7.Load()
		next := max(now, last+1)
		if lastV7.CompareAndSwap(last, next) {
			return next
		}
	}
}
