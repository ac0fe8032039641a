package secrets

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func box(t *testing.T) *Box {
	b, err := NewBox(bytes.Repeat([]byte{7}, KeySize))
	require.NoError(t, err)
	return b
}

func TestSealOpen(t *testing.T) {
	b := box(t)
	sealed, err := b.Seal([]byte("hunter2"), "conn:1")
	require.NoError(t, err)
	require.NotContains(t, string(sealed), "hunter2")
	pt, err := b.Open(sealed, "conn:1")
	require.NoError(t, err)
	require.Equal(t, "hunter2", string(pt))

	_, err = b.Open(sealed, "conn:2")
	require.ErrorIs(t, err, ErrDecrypt, "a value moved to another record must not open")
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	_, err = b.Open(tampered, "conn:1")
	require.ErrorIs(t, err, ErrDecrypt)
	other, err := NewBox(bytes.Repeat([]byte{8}, KeySize))
	require.NoError(t, err)
	_, err = other.Open(sealed, "conn:1")
	require.ErrorIs(t, err, ErrDecrypt)
	_, err = b.Open([]byte{1, 2}, "conn:1")
	require.ErrorIs(t, err, ErrDecrypt)

	again, err := b.Seal([]byte("hunter2"), "conn:1")
	require.NoError(t, err)
	require.NotEqual(t, sealed, again, "nonces are random")
}

func TestSealValue(t *testing.T) {
	b := box(t)
	sealed, err := b.SealValue(map[string]any{"token": "abc", "n": int64(1234567)}, "x")
	require.NoError(t, err)
	v, err := b.OpenValue(sealed, "x")
	require.NoError(t, err)
	require.Equal(t, map[string]any{"token": "abc", "n": int64(1234567)}, v)
}

// TestOpenValueReadsWhatOlderLimitsAllowed: a value sealed under an older, laxer nesting
// limit (credentials or connector parameters 100 levels deep) still opens: reads are
// never stricter than writes were.
func TestOpenValueReadsWhatOlderLimitsAllowed(t *testing.T) {
	b := box(t)
	var v any = "leaf"
	for range 100 {
		v = map[string]any{"k": v}
	}
	sealed, err := b.SealValue(v.(map[string]any), "aad")
	require.NoError(t, err)
	got, err := b.OpenValue(sealed, "aad")
	require.NoError(t, err)
	require.Equal(t, v, got)
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, 32)
	for _, s := range []string{
		"abababababababababababababababababababababababababababababababab",
		"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=",
		"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s",
	} {
		k, err := ParseKey(s)
		require.NoError(t, err, s)
		require.Equal(t, raw, k)
	}
	_, err := ParseKey("short")
	require.ErrorContains(t, err, "32 bytes")
	_, err = NewBox([]byte("short"))
	require.Error(t, err)
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "secret.key")
	k1, err := LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.Len(t, k1, KeySize)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	st, err = os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	// The file is complete: the base64 key and a newline, nothing else.
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, base64.StdEncoding.EncodeToString(k1)+"\n", string(b))
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left beside the key")

	k2, err := LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.Equal(t, k1, k2)
	require.NoError(t, os.Chmod(path, 0o644))
	_, err = LoadOrCreateKeyFile(path)
	require.ErrorContains(t, err, "readable by others")
}

// A crash while creating the key leaves at most a half-written temporary file: the next
// start makes a key and removes the leftover.
func TestKeyFileAfterCrash(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.key")
	leftover := filepath.Join(dir, ".secret.key-4242.tmp")
	require.NoError(t, os.WriteFile(leftover, []byte("q6urq6ur"), 0o600))
	k, err := LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	again, err := LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.Equal(t, k, again)
	_, err = os.Stat(leftover)
	require.ErrorIs(t, err, os.ErrNotExist, "the crash's leftover is removed")
}

// A damaged key file (e.g. an empty one left by an earlier version after a power cut) is
// refused with what to do, and never replaced by a new key.
func TestKeyFileDamaged(t *testing.T) {
	for name, content := range map[string]string{"empty": "", "truncated": "q6urq6urq6urq6ur"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secret.key")
			require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
			_, err := LoadOrCreateKeyFile(path)
			require.ErrorContains(t, err, "is damaged")
			require.ErrorContains(t, err, "restore it from the backup")
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, content, string(b), "a damaged key file is left alone")
		})
	}
}

// Processes starting at once on a new data dir all end up with the one key on disk.
func TestKeyFileConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = LoadOrCreateKeyFile(path) })
	}
	wg.Wait()
	onDisk, err := LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, onDisk, keys[i], "caller %d got the key on disk", i)
	}
}

func TestRandomToken(t *testing.T) {
	a, b := RandomToken(16), RandomToken(16)
	require.Len(t, a, 26)
	require.NotEqual(t, a, b)
	require.Regexp(t, `^[a-z2-7]+$`, a)
}

func TestDeriveToken(t *testing.T) {
	b := box(t)
	a1, a2 := b.DeriveToken("ws:req-1", 16), b.DeriveToken("ws:req-1", 16)
	require.Equal(t, a1, a2)
	require.Len(t, a1, 26)
	require.NotEqual(t, a1, b.DeriveToken("ws:req-2", 16))
	other, err := NewBox(bytes.Repeat([]byte{9}, KeySize))
	require.NoError(t, err)
	require.NotEqual(t, a1, other.DeriveToken("ws:req-1", 16))
}
