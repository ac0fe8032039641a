package sqlite

import (
	"database/sql"
	"os"
	"strconv"
	"time"

	sqlite3 "modernc.org/sqlite/lib"
)

// checkpointer copies the WAL back into the database in the background, on its own
// connection, so commits never wait for a checkpoint (wal_autocheckpoint is 0).
func (s *Store) checkpointer() {
	defer close(s.ckDone)
	t := time.NewTicker(s.opts.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.bg.Done():
			return
		case <-t.C:
			select {
			case s.flushWake <- struct{}{}: // the writer writes the last event times
			default:
			}
			s.checkpoint()
		case <-s.ckWake:
			s.checkpoint()
		}
	}
}

// checkpoint runs one round and reports whether the WAL is fully copied into the database.
//
// It always starts with a PASSIVE checkpoint, which takes no lock writers need and never
// waits. When that copied every frame (no reader pins an older snapshot) and the WAL file
// has grown past Options.WALTruncateSize, it runs a TRUNCATE checkpoint, which resets the
// file to zero bytes. TRUNCATE needs the write lock and readers out of the WAL; the
// checkpoint connection has no busy timeout, so instead of waiting (and holding the write
// lock meanwhile, which would stall the writer) it gives up. When the WAL is still large
// after that, the writer is asked to restart it (maybeRestart). In between,
// journal_size_limit caps the file the writer leaves behind whenever it restarts a fully
// copied WAL.
func (s *Store) checkpoint() (complete bool) {
	if s.restartMode.Load() != restartNone && len(s.queue) > 0 {
		// The writer restarts the WAL before its next transaction, which is queued: let it
		// have the checkpoint lock. (An idle writer has nothing to restart the WAL for
		// yet; the round runs.)
		return false
	}
	// One checkpoint at a time: SQLite refuses a second one at once (SQLITE_BUSY, with no
	// wait), so the writer's restart and this round take turns.
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	complete, logFrames := s.runCheckpoint("PASSIVE")
	size := s.walSize()
	s.m.wal(size)
	if complete && size > s.opts.WALTruncateSize {
		start := time.Now()
		if ok, _ := s.runCheckpoint("TRUNCATE"); ok {
			after := s.walSize()
			s.m.wal(after)
			s.log.Info("WAL truncated", "wal_bytes_before", size, "wal_bytes", after, "duration", time.Since(start))
			return true
		}
		s.log.Debug("WAL truncate checkpoint postponed (the WAL is in use)", "wal_bytes", size)
		complete = false
	}
	s.maybeRestart(logFrames, size)
	return complete
}

// runCheckpoint runs one checkpoint in mode and reports whether it copied every frame, and
// how many frames the WAL holds.
func (s *Store) runCheckpoint(mode string) (complete bool, logFrames int) {
	start := time.Now()
	var busy, done int
	err := s.ck.QueryRowContext(s.bg, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &logFrames, &done)
	if err != nil {
		if s.bg.Err() == nil && sqliteCode(err)&0xff != sqlite3.SQLITE_BUSY {
			s.log.Warn("checkpoint failed", "mode", mode, "err", err)
		}
		return false, 0
	}
	s.m.checkpoint(mode, time.Since(start))
	return busy == 0 && done == logFrames, logFrames
}

// Under sustained writes a PASSIVE checkpoint is never complete (commits keep adding frames
// while it copies), so the writer never starts the WAL over and the file grows for as long
// as the load lasts. When the WAL holds more than half of Options.WALTruncateSize, the
// checkpointer asks the writer to restart it: between two transactions, on its own
// connection (so no writer lock is waited for), the writer runs a RESTART checkpoint (a
// TRUNCATE one when the file is already past WALTruncateSize), which copies the few frames
// the PASSIVE one left and waits at most restartWait for readers to leave the WAL; the next
// transaction then writes from the start of the file. Commits wait for that one checkpoint
// (a few milliseconds, once per WALTruncateSize/2 bytes written); a reader that keeps the
// WAL busy longer makes the attempt fail, and the next one is tried no sooner than 100 ms
// later, then 200, 400… (up to maxRestartBackoff), so a snapshot pinned for long stalls
// the writer for restartWait a few times, not at every commit.
const (
	restartWait       = 50 * time.Millisecond
	minRestartBackoff = 100 * time.Millisecond
	maxRestartBackoff = 30 * time.Second
)

// maybeRestart asks the writer for a restart when the WAL holds logFrames frames in a file
// of size bytes and the last failed attempt's backoff is over.
func (s *Store) maybeRestart(logFrames int, size int64) {
	if int64(logFrames)*int64(s.pageSize+walFrameHeader) < s.opts.WALTruncateSize/2 && size <= s.opts.WALTruncateSize {
		return
	}
	s.restartMu.Lock()
	defer s.restartMu.Unlock()
	if time.Now().Before(s.restartAfter) {
		return
	}
	s.restartMode.Store(restartModeFor(size, s.opts.WALTruncateSize))
}

func restartModeFor(size, limit int64) int32 {
	if size > limit {
		return restartTruncate
	}
	return restartRestart
}

// Values of Store.restartMode.
const (
	restartNone int32 = iota
	restartRestart
	restartTruncate
)

// restartWAL runs the checkpoint maybeRestart asked for, on the writer's connection
// between transactions. While the checkpointer runs a round it tries again before the
// next transaction.
func (s *Store) restartWAL(mode int32) {
	if !s.ckMu.TryLock() {
		s.restartMode.CompareAndSwap(restartNone, mode)
		return
	}
	defer s.ckMu.Unlock()
	name := "RESTART"
	if mode == restartTruncate {
		name = "TRUNCATE"
	}
	start := time.Now()
	ok, err := restartOn(s.wc, name, s.opts.BusyTimeout)
	d := time.Since(start)
	s.restartMu.Lock()
	if ok {
		s.restartBackoff = 0
		s.restartAfter = time.Time{}
	} else {
		s.restartBackoff = min(max(2*s.restartBackoff, minRestartBackoff), maxRestartBackoff)
		s.restartAfter = time.Now().Add(s.restartBackoff)
	}
	s.restartMu.Unlock()
	switch {
	case err != nil:
		s.log.Warn("WAL restart checkpoint failed", "mode", name, "err", err)
	case ok:
		s.m.checkpoint(name, d)
		s.log.Debug("WAL restarted", "mode", name, "duration", d)
	default:
		s.log.Debug("WAL restart postponed (readers kept the WAL busy)", "mode", name, "duration", d)
	}
}

// restartOn runs a RESTART or TRUNCATE checkpoint on c, waiting at most restartWait for
// readers, and reports whether it completed; c's busy timeout is busy again afterwards.
func restartOn(c *sql.Conn, mode string, busy time.Duration) (complete bool, err error) {
	if _, err := c.ExecContext(writeCtx, "PRAGMA busy_timeout = "+strconv.FormatInt(restartWait.Milliseconds(), 10)); err != nil {
		return false, err
	}
	defer func() {
		if _, rerr := c.ExecContext(writeCtx, "PRAGMA busy_timeout = "+strconv.FormatInt(busy.Milliseconds(), 10)); rerr != nil && err == nil {
			err = rerr
		}
	}()
	var blocked, logFrames, done int
	if err := c.QueryRowContext(writeCtx, "PRAGMA wal_checkpoint("+mode+")").Scan(&blocked, &logFrames, &done); err != nil {
		if sqliteCode(err)&0xff == sqlite3.SQLITE_BUSY {
			return false, nil
		}
		return false, err
	}
	return blocked == 0 && done == logFrames, nil
}

func (s *Store) walSize() int64 {
	fi, err := os.Stat(s.path + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}
