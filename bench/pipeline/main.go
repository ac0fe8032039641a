// Command pipeline is the minimal durable webhook pipeline hookmap's receiver is measured
// against (see bench/ingest): the code a competent engineer writes in an hour on the same
// stack, with the same durability, and nothing else.
//
// Per POST it reads the body (at most 1 MiB, else 413), decodes it with encoding/json,
// evaluates one precompiled CEL expression ("issue." + data.action) and one precompiled
// JMESPath expression ({id: id, action: action, login: user.login}) on it, and inserts
// the raw body into an unindexed table through a group commit: one writer goroutine takes
// every queued insert (up to 256), runs them in one transaction and answers them all after
// COMMIT. SQLite (modernc.org/sqlite) runs in WAL mode with synchronous=FULL, so a 200
// means the body is on disk; wal_autocheckpoint is left at SQLite's default.
//
// It answers 200 {} after the commit, 400 for a body that is not JSON, 413 above the
// limit and 500 with a JSON error when an expression or the commit fails. GET /stats
// answers {"wal_written_bytes": N, "commits": N, "committed": N, "commit_nanos": N}: the
// bytes the writer appended to the WAL (frames times page size plus their 24-byte
// headers), its commits, the inserts they held and their time from BEGIN to COMMIT.
//
//	go run ./bench/pipeline -db pipeline.db -addr 127.0.0.1:0
//
// It prints "listening on ADDR" on stdout once it listens, and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"cel.dev/cel-go/cel"
	"github.com/jmespath/go-jmespath"
	"modernc.org/sqlite"

	"github.com/hookmap/hookmap/bench/sigprof"
)

const (
	maxBody  = 1 << 20
	maxBatch = 256
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	db := flag.String("db", "pipeline.db", "SQLite file (created when missing)")
	flag.Parse()
	sigprof.Install() // bench/ingest -cpuprofile
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *db); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr, dbPath string) error {
	p, err := open(dbPath)
	if err != nil {
		return err
	}
	defer p.Close()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening on %s\n", l.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// Pipeline is the server: its database, its precompiled expressions and its writer.
type Pipeline struct {
	db       *sql.DB
	conn     *sql.Conn // the writer's connection
	pageSize int64
	typ      cel.Program
	record   *jmespath.JMESPath
	queue    chan insert
	done     chan struct{}
	walBytes atomic.Int64
	// commits, the inserts they held and the time they took (BEGIN to COMMIT, in ns), for
	// GET /stats
	commits, committed, commitNanos atomic.Int64
}

// insert is one queued body and where its outcome goes.
type insert struct {
	body []byte
	err  chan error
}

// open opens (or creates) the database at path, compiles the expressions and starts the
// writer.
func open(path string) (*Pipeline, error) {
	env, err := cel.NewEnv(cel.Variable("data", cel.DynType))
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(`"issue." + data.action`)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	prg, err := env.Program(ast)
	if err != nil {
		return nil, err
	}
	jp, err := jmespath.Compile(`{id: id, action: action, login: user.login}`)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err == nil {
		_, err = conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS webhooks (body BLOB)`)
	}
	var pageSize int64
	if err == nil {
		err = conn.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize)
	}
	if err == nil {
		err = checkDurable(ctx, conn)
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	p := &Pipeline{
		db: db, conn: conn, pageSize: pageSize, typ: prg, record: jp,
		queue: make(chan insert, maxBatch), done: make(chan struct{}),
	}
	p.walWritten() // start counting from zero
	go p.writer()
	return p, nil
}

// checkDurable checks that the connection runs in WAL mode with synchronous=FULL: a
// yardstick that skipped its fsyncs would flatter itself.
func checkDurable(ctx context.Context, conn *sql.Conn) error {
	var mode string
	var sync int
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return err
	}
	if err := conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
		return err
	}
	if mode != "wal" || sync != 2 {
		return fmt.Errorf("journal_mode=%s synchronous=%d, want wal and 2 (FULL)", mode, sync)
	}
	return nil
}

// Close stops the writer and closes the database. No request may be in flight.
func (p *Pipeline) Close() error {
	close(p.queue)
	<-p.done
	_ = p.conn.Close()
	return p.db.Close()
}

// Handler serves POST /* (a webhook) and GET /stats.
func (p *Pipeline) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]int64{"wal_written_bytes": p.walBytes.Load(),
			"commits": p.commits.Load(), "committed": p.committed.Load(), "commit_nanos": p.commitNanos.Load()})
	})
	mux.HandleFunc("POST /", p.receive)
	return mux
}

func (p *Pipeline) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, "body over 1 MiB")
			return
		}
		writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	var data any
	if err := json.Unmarshal(body, &data); err != nil {
		writeError(w, http.StatusBadRequest, "body is not JSON: "+err.Error())
		return
	}
	if _, _, err := p.typ.Eval(map[string]any{"data": data}); err != nil {
		writeError(w, http.StatusInternalServerError, "type: "+err.Error())
		return
	}
	if _, err := p.record.Search(data); err != nil {
		writeError(w, http.StatusInternalServerError, "record: "+err.Error())
		return
	}
	in := insert{body: body, err: make(chan error, 1)}
	p.queue <- in
	if err := <-in.err; err != nil {
		writeError(w, http.StatusInternalServerError, "store: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// writer commits queued inserts in groups: it takes what is queued (up to maxBatch),
// inserts them in one transaction and answers them all after COMMIT.
func (p *Pipeline) writer() {
	defer close(p.done)
	batch := make([]insert, 0, maxBatch)
	for in := range p.queue {
		batch = append(batch[:0], in)
	more:
		for len(batch) < maxBatch {
			select {
			case in, ok := <-p.queue:
				if !ok {
					break more
				}
				batch = append(batch, in)
			default:
				break more
			}
		}
		err := p.commit(batch)
		for _, in := range batch {
			in.err <- err
		}
	}
}

func (p *Pipeline) commit(batch []insert) error {
	ctx := context.Background()
	start := time.Now()
	tx, err := p.conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO webhooks (body) VALUES (?)`)
	if err != nil {
		return err
	}
	for _, in := range batch {
		if _, err := stmt.ExecContext(ctx, in.body); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	p.walBytes.Add(p.walWritten())
	p.commits.Add(1)
	p.committed.Add(int64(len(batch)))
	p.commitNanos.Add(int64(time.Since(start)))
	return nil
}

// walWritten returns the bytes the writer connection appended to the WAL since the last
// call: SQLITE_DBSTATUS_CACHE_WRITE counts WAL frames in WAL mode, each a page and a
// 24-byte frame header.
func (p *Pipeline) walWritten() int64 {
	var frames int
	_ = p.conn.Raw(func(dc any) error {
		st, ok := dc.(sqlite.DBStatus)
		if !ok {
			return errors.New("the driver has no DBStatus")
		}
		var err error
		frames, _, err = st.Status(sqlite.DBStatusCacheWrite, true)
		return err
	})
	return int64(frames) * (p.pageSize + 24)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
