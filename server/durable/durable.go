package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// TempSuffix ends the name of every temporary file WriteFileExclusive creates; such a
// file left by a crash is incomplete and safe to delete.
const TempSuffix = ".tmp"

// SyncDir fsyncs a directory, so the entries created, renamed or removed in it are on
// disk. On Windows, where directories cannot be synced, it does nothing.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// MkdirAll is os.MkdirAll that also fsyncs the parent of every directory it creates, so
// the new directories are still there after a power cut. An existing directory is left
// as it is (its mode is not changed).
func MkdirAll(dir string, perm fs.FileMode) error {
	dir = filepath.Clean(dir)
	// The directories to create, deepest first.
	var missing []string
	for p := dir; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err == nil {
			if !st.IsDir() {
				return &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR}
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, p)
		if parent := filepath.Dir(p); parent == p {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		p := missing[i]
		if err := os.Mkdir(p, perm); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := SyncDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

// WriteFileExclusive creates path holding data with mode perm, durably and atomically:
// data goes to a temporary file in the same directory (named after path, ending in
// TempSuffix), which is fsynced, then hard-linked to path and removed, and the
// directory is fsynced. Readers see either no file or the whole of it, also after a
// crash. When path already exists (another process won the race) it returns an error
// wrapping fs.ErrExist and leaves the existing file alone.
func WriteFileExclusive(path string, data []byte, perm fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+"-*"+TempSuffix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = rerr
		}
	}()
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// A hard link, unlike a rename, never replaces an existing file.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", path, fs.ErrExist)
		}
		// A file system without hard links (FAT, some network and FUSE ones): rename,
		// after checking that the name is still free.
		if _, serr := os.Lstat(path); serr == nil {
			return fmt.Errorf("create %s: %w", path, fs.ErrExist)
		}
		if rerr := os.Rename(tmp, path); rerr != nil {
			return fmt.Errorf("create %s: %w", path, errors.Join(err, rerr))
		}
	}
	return SyncDir(dir)
}

// RemoveTemps removes the temporary files a crashed WriteFileExclusive of path may have
// left beside it.
func RemoveTemps(path string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	prefix := "." + base + "-"
	var errs []error
	for _, e := range entries {
		if n := e.Name(); e.Type().IsRegular() && strings.HasPrefix(n, prefix) && strings.HasSuffix(n, TempSuffix) {
			if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
