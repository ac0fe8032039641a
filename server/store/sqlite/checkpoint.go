package sqlite

import (
	"os"
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
			s.checkpoint()
		}
	}
}

// checkpoint runs one round and reports whether the WAL is fully copied into the database.
//
// It always starts with a PASSIVE checkpoint, which takes no lock writers need and never
// waits. Only when that copied every frame (no reader pins an older snapshot) and the WAL
// file has grown past Options.WALTruncateSize does it run a TRUNCATE checkpoint, which
// resets the file to zero bytes. TRUNCATE needs the write lock and readers out of the
// WAL; the checkpoint connection has no busy timeout, so instead of waiting (and holding
// the write lock meanwhile, which would stall the writer) it gives up and the next round
// tries again. In between, journal_size_limit caps the file the writer leaves behind
// whenever it restarts a fully copied WAL.
func (s *Store) checkpoint() (complete bool) {
	if !s.runCheckpoint("PASSIVE") {
		s.m.wal(s.walSize())
		return false
	}
	size := s.walSize()
	s.m.wal(size)
	if size <= s.opts.WALTruncateSize {
		return true
	}
	start := time.Now()
	complete = s.runCheckpoint("TRUNCATE")
	after := s.walSize()
	s.m.wal(after)
	if complete {
		s.log.Info("WAL truncated", "wal_bytes_before", size, "wal_bytes", after, "duration", time.Since(start))
	} else {
		s.log.Debug("WAL truncate checkpoint postponed (the WAL is in use)", "wal_bytes", size)
	}
	return complete
}

// runCheckpoint runs one checkpoint in mode and reports whether it copied every frame.
func (s *Store) runCheckpoint(mode string) bool {
	start := time.Now()
	var busy, logFrames, done int
	err := s.ck.QueryRowContext(s.bg, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &logFrames, &done)
	if err != nil {
		if s.bg.Err() == nil && sqliteCode(err)&0xff != sqlite3.SQLITE_BUSY {
			s.log.Warn("checkpoint failed", "mode", mode, "err", err)
		}
		return false
	}
	s.m.checkpoint(mode, time.Since(start))
	return busy == 0 && done == logFrames
}

func (s *Store) walSize() int64 {
	fi, err := os.Stat(s.path + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}
