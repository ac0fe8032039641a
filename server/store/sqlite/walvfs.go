package sqlite

// The writer's VFS: SQLite's unix VFS, with a commit's WAL writes gathered into one.
//
// SQLite appends a commit to the WAL a frame at a time, each frame with two writes (its
// 24-byte header, then its page), and then syncs the file. Under load a commit holds some
// 17 frames, so 34 pwrite calls, about 50 µs of system CPU per commit on the measured disk
// and some 8% of the writer's time (bench/walwrite, docs/performance.md). This VFS wraps
// the unix VFS and, for WAL files only, keeps contiguous writes in a buffer and writes
// them with one call (at most maxWALChunk bytes each) before the file's next other
// operation: its sync above all, and any read, size, truncate, file control or close.
//
// Durability is unchanged: every byte SQLite wrote is written before the sync that makes
// the commit durable, and the commit returns (and the webhook is acknowledged) only after
// that sync. Other connections read a WAL frame only once the WAL index lists it, which
// SQLite updates after the sync; this connection's own reads flush first. A failed write
// is returned to SQLite from the operation that flushed, which fails the transaction as a
// failed write would have. Only the writer's connection uses it; readers and the
// checkpointer, which never write the WAL's frames, use the unix VFS itself, and both
// share its locks (the unix VFS keeps them per file, whatever the VFS object).

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
	sqlite3 "modernc.org/sqlite/lib"
)

const (
	// walVFSName is the VFS's name in the writer's DSN.
	walVFSName = "hookmap-wal"
	// maxWALBuffer: a buffer that would grow past it is written out first.
	maxWALBuffer = 1 << 20
	// maxWALChunk is the most bytes one write hands the unix VFS, which writes at most
	// 128 KiB per call (it masks the length with 0x1ffff).
	maxWALChunk = 64 << 10
	// shimHeader is the size of our sqlite3_file; the unix VFS's follows it.
	shimHeader = uintptr(16)
)

var (
	walVFSOnce sync.Once
	walVFSErr  error
	unixVFS    uintptr  // the unix VFS (sqlite3_vfs*)
	unixOpen   uintptr  // its xOpen
	shimIO     uintptr  // our sqlite3_io_methods
	shimFiles  sync.Map // our sqlite3_file's address -> *shimFile
)

// shimFile is one file opened through the VFS.
type shimFile struct {
	name string
	real uintptr // the unix VFS's sqlite3_file, right after ours
	wal  bool
	buf  []byte // WAL writes not made yet, contiguous from off
	off  int64
	// writes counts the WAL writes SQLite asked for, flushes the writes made (tests).
	writes, flushes atomic.Int64
}

// registerWALVFS registers the VFS (once per process).
func registerWALVFS() error {
	walVFSOnce.Do(func() {
		tls := libc.NewTLS()
		defer tls.Close()
		p := sqlite3.Xsqlite3_vfs_find(tls, 0)
		if p == 0 {
			walVFSErr = errors.New("sqlite: no default VFS")
			return
		}
		unix := (*sqlite3.Tsqlite3_vfs)(cptr(p))
		unixVFS, unixOpen = p, unix.FxOpen
		nv := libc.Xcalloc(tls, 1, types.Size_t(unsafe.Sizeof(sqlite3.Tsqlite3_vfs{})))
		m := libc.Xcalloc(tls, 1, types.Size_t(unsafe.Sizeof(sqlite3.Tsqlite3_io_methods{})))
		name, err := libc.CString(walVFSName)
		if nv == 0 || m == 0 || err != nil {
			walVFSErr = errors.New("sqlite: out of memory registering the WAL VFS")
			return
		}
		v := (*sqlite3.Tsqlite3_vfs)(cptr(nv))
		*v = *unix
		v.FpNext = 0
		v.FszOsFile = unix.FszOsFile + int32(shimHeader)
		v.FzName = name
		v.FxOpen = cFunc(shimOpen)
		io := (*sqlite3.Tsqlite3_io_methods)(cptr(m))
		*io = sqlite3.Tsqlite3_io_methods{
			FiVersion: 3, FxClose: cFunc(shimClose), FxRead: cFunc(shimRead), FxWrite: cFunc(shimWrite),
			FxTruncate: cFunc(shimTruncate), FxSync: cFunc(shimSync), FxFileSize: cFunc(shimFileSize),
			FxLock: cFunc(shimLock), FxUnlock: cFunc(shimUnlock), FxCheckReservedLock: cFunc(shimCheckReservedLock),
			FxFileControl: cFunc(shimFileControl), FxSectorSize: cFunc(shimSectorSize),
			FxDeviceCharacteristics: cFunc(shimDeviceCharacteristics), FxShmMap: cFunc(shimShmMap),
			FxShmLock: cFunc(shimShmLock), FxShmBarrier: cFunc(shimShmBarrier), FxShmUnmap: cFunc(shimShmUnmap),
			FxFetch: cFunc(shimFetch), FxUnfetch: cFunc(shimUnfetch),
		}
		shimIO = m
		if rc := sqlite3.Xsqlite3_vfs_register(tls, nv, 0); rc != sqlite3.SQLITE_OK {
			walVFSErr = errors.New("sqlite: registering the WAL VFS failed")
		}
	})
	return walVFSErr
}

// cFunc is a Go function as the C function pointer SQLite calls (modernc's layout of a
// func value: a pointer to its code pointer).
func cFunc[T any](f T) uintptr { return *(*uintptr)(unsafe.Pointer(&struct{ f T }{f})) }

// cptr is the address p of C memory (allocated by SQLite or libc, never by Go) as a
// pointer; go vet's unsafeptr check cannot tell such an address from a Go pointer kept
// in a uintptr.
func cptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// goFunc is a C function pointer as the Go function that calls it.
func goFunc[T any](p uintptr) T { return *(*T)(unsafe.Pointer(&struct{ uintptr }{p})) }

func (f *shimFile) io() *sqlite3.Tsqlite3_io_methods {
	return (*sqlite3.Tsqlite3_io_methods)(cptr((*sqlite3.Tsqlite3_file)(cptr(f.real)).FpMethods))
}

func shimOf(p uintptr) *shimFile {
	v, _ := shimFiles.Load(p)
	return v.(*shimFile)
}

// flush makes the buffered writes.
func (f *shimFile) flush(tls *libc.TLS) int32 {
	rc := int32(sqlite3.SQLITE_OK)
	for i := 0; i < len(f.buf) && rc == sqlite3.SQLITE_OK; i += maxWALChunk {
		n := min(maxWALChunk, len(f.buf)-i)
		rc = goFunc[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](f.io().FxWrite)(tls, f.real,
			uintptr(unsafe.Pointer(&f.buf[i])), int32(n), f.off+int64(i))
		f.flushes.Add(1)
	}
	runtime.KeepAlive(f.buf)
	f.buf = f.buf[:0]
	return rc
}

func shimOpen(tls *libc.TLS, pVfs, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	real := pFile + shimHeader
	rc := goFunc[func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32](unixOpen)(tls, unixVFS, zName, real, flags, pOutFlags)
	if rc != sqlite3.SQLITE_OK || (*sqlite3.Tsqlite3_file)(cptr(real)).FpMethods == 0 {
		(*sqlite3.Tsqlite3_file)(cptr(pFile)).FpMethods = 0
		return rc
	}
	shimFiles.Store(pFile, &shimFile{name: libc.GoString(zName), real: real, wal: flags&sqlite3.SQLITE_OPEN_WAL != 0})
	(*sqlite3.Tsqlite3_file)(cptr(pFile)).FpMethods = shimIO
	return sqlite3.SQLITE_OK
}

func shimWrite(tls *libc.TLS, p, buf uintptr, n int32, off int64) int32 {
	f := shimOf(p)
	if !f.wal {
		return goFunc[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](f.io().FxWrite)(tls, f.real, buf, n, off)
	}
	f.writes.Add(1)
	if len(f.buf) > 0 && (off != f.off+int64(len(f.buf)) || len(f.buf)+int(n) > maxWALBuffer) {
		if rc := f.flush(tls); rc != sqlite3.SQLITE_OK {
			return rc
		}
	}
	if len(f.buf) == 0 {
		f.off = off
	}
	f.buf = append(f.buf, unsafe.Slice((*byte)(cptr(buf)), n)...)
	return sqlite3.SQLITE_OK
}

// The operations below flush first when they read, size, sync, truncate, control or
// close the file; the others (locks, shared memory, sector size) pass through.

func shimClose(tls *libc.TLS, p uintptr) int32 {
	f := shimOf(p)
	rc := f.flush(tls)
	if rc2 := goFunc[func(*libc.TLS, uintptr) int32](f.io().FxClose)(tls, f.real); rc == sqlite3.SQLITE_OK {
		rc = rc2
	}
	shimFiles.Delete(p)
	return rc
}

func shimRead(tls *libc.TLS, p, buf uintptr, n int32, off int64) int32 {
	f := shimOf(p)
	if rc := f.flush(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return goFunc[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](f.io().FxRead)(tls, f.real, buf, n, off)
}

func shimTruncate(tls *libc.TLS, p uintptr, size int64) int32 {
	f := shimOf(p)
	if rc := f.flush(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return goFunc[func(*libc.TLS, uintptr, int64) int32](f.io().FxTruncate)(tls, f.real, size)
}

func shimSync(tls *libc.TLS, p uintptr, flags int32) int32 {
	f := shimOf(p)
	if rc := f.flush(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return goFunc[func(*libc.TLS, uintptr, int32) int32](f.io().FxSync)(tls, f.real, flags)
}

func shimFileSize(tls *libc.TLS, p, pSize uintptr) int32 {
	f := shimOf(p)
	if rc := f.flush(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return goFunc[func(*libc.TLS, uintptr, uintptr) int32](f.io().FxFileSize)(tls, f.real, pSize)
}

func shimFileControl(tls *libc.TLS, p uintptr, op int32, arg uintptr) int32 {
	f := shimOf(p)
	if rc := f.flush(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return goFunc[func(*libc.TLS, uintptr, int32, uintptr) int32](f.io().FxFileControl)(tls, f.real, op, arg)
}

func shimLock(tls *libc.TLS, p uintptr, l int32) int32 {
	f := shimOf(p)
	return goFunc[func(*libc.TLS, uintptr, int32) int32](f.io().FxLock)(tls, f.real, l)
}

func shimUnlock(tls *libc.TLS, p uintptr, l int32) int32 {
	f := shimOf(p)
	return goFunc[func(*libc.TLS, uintptr, int32) int32](f.io().FxUnlock)(tls, f.real, l)
}

func shimCheckReservedLock(tls *libc.TLS, p, out uintptr) int32 {
	f := shimOf(p)
	return goFunc[func(*libc.TLS, uintptr, uintptr) int32](f.io().FxCheckReservedLock)(tls, f.real, out)
}

func shimSectorSize(tls *libc.TLS, p uintptr) int32 {
	f := shimOf(p)
	return goFunc[func(*libc.TLS, uintptr) int32](f.io().FxSectorSize)(tls, f.real)
}

func shimDeviceCharacteristics(tls *libc.TLS, p uintptr) int32 {
	f := shimOf(p)
	return goFunc[func(*libc.TLS, uintptr) int32](f.io().FxDeviceCharacteristics)(tls, f.real)
}

func shimShmMap(tls *libc.TLS, p uintptr, iPg, pgsz, extend int32, pp uintptr) int32 {
	f := shimOf(p)
	return goFunc[func(*libc.TLS, uintptr, int32, int32, int32, uintptr) int32](f.io().FxShmMap)(tls, f.real, iPg, pgsz, extend, pp)
}

func shimShmLock(tls *libc.TLS, p uintptr, off, n, flags int32) int32 {
	f := shimOf(p)
	return goFunc[func(*libc.TLS, uintptr, int32, int32, int32) int32](f.io().FxShmLock)(tls, f.real, off, n, flags)
}

func shimShmBarrier(tls *libc.TLS, p uintptr) {
	f := shimOf(p)
	goFunc[func(*libc.TLS, uintptr)](f.io().FxShmBarrier)(tls, f.real)
}

func shimShmUnmap(tls *libc.TLS, p uintptr, del int32) int32 {
	f := shimOf(p)
	return goFunc[func(*libc.TLS, uintptr, int32) int32](f.io().FxShmUnmap)(tls, f.real, del)
}

func shimFetch(tls *libc.TLS, p uintptr, off int64, n int32, pp uintptr) int32 {
	f := shimOf(p)
	return goFunc[func(*libc.TLS, uintptr, int64, int32, uintptr) int32](f.io().FxFetch)(tls, f.real, off, n, pp)
}

func shimUnfetch(tls *libc.TLS, p uintptr, off int64, pp uintptr) int32 {
	f := shimOf(p)
	return goFunc[func(*libc.TLS, uintptr, int64, uintptr) int32](f.io().FxUnfetch)(tls, f.real, off, pp)
}
