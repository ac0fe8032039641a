package durable

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMkdirAll(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b", "c")
	require.NoError(t, MkdirAll(dir, 0o700))
	for _, p := range []string{filepath.Join(root, "a"), filepath.Join(root, "a", "b"), dir} {
		st, err := os.Stat(p)
		require.NoError(t, err)
		require.True(t, st.IsDir())
		require.Equal(t, fs.FileMode(0o700), st.Mode().Perm(), p)
	}
	require.NoError(t, MkdirAll(dir, 0o700), "an existing directory is fine")

	file := filepath.Join(root, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	require.ErrorIs(t, MkdirAll(filepath.Join(file, "sub"), 0o700), syscall.ENOTDIR)
	require.ErrorIs(t, MkdirAll(file, 0o700), syscall.ENOTDIR, "like os.MkdirAll")
}

func TestWriteFileExclusive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.key")
	require.NoError(t, WriteFileExclusive(path, []byte("first\n"), 0o600))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "first\n", string(b))
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o600), st.Mode().Perm())

	err = WriteFileExclusive(path, []byte("second\n"), 0o600)
	require.ErrorIs(t, err, fs.ErrExist)
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "first\n", string(b), "an existing file is never replaced")

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left behind")
}

func TestWriteFileExclusiveRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = WriteFileExclusive(path, []byte{byte('a' + i)}, 0o600) })
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		if err == nil {
			won++
			b, rerr := os.ReadFile(path)
			require.NoError(t, rerr)
			require.Equal(t, []byte{byte('a' + i)}, b, "the file holds the winner's data")
			continue
		}
		require.ErrorIs(t, err, fs.ErrExist)
	}
	require.Equal(t, 1, won, "exactly one writer creates the file")
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.key")
	crashed := filepath.Join(dir, ".secret.key-123"+TempSuffix)
	other := filepath.Join(dir, ".other-123"+TempSuffix)
	for _, p := range []string{crashed, other, path} {
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
	}
	require.NoError(t, RemoveTemps(path))
	_, err := os.Stat(crashed)
	require.ErrorIs(t, err, fs.ErrNotExist)
	for _, p := range []string{other, path} {
		_, err := os.Stat(p)
		require.NoError(t, err, "%s is not a temporary file of %s", p, path)
	}
}

func TestSyncDir(t *testing.T) {
	require.NoError(t, SyncDir(t.TempDir()))
	require.Error(t, SyncDir(filepath.Join(t.TempDir(), "missing")))
}
