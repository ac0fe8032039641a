package sigprof

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// SIGUSR1 starts a profile, SIGUSR2 stops it, and the file appears only then, whole.
func TestProfileBetweenSignals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	t.Setenv(Env, path)
	Install()
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
	require.Eventually(t, func() bool { _, err := os.Stat(path + ".tmp"); return err == nil }, 10*time.Second, 5*time.Millisecond)
	_, err := os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "not there while the profile runs")
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR2))
	require.Eventually(t, func() bool { _, err := os.Stat(path); return err == nil }, 10*time.Second, 5*time.Millisecond)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, []byte{0x1f, 0x8b}, b[:2], "a gzipped profile")
	require.Greater(t, len(b), 10, "more than an empty gzip stream")
	for _, allocs := range []string{path + ".allocs-start", path + ".allocs"} {
		b, err := os.ReadFile(allocs)
		require.NoError(t, err, "the allocations profile is written before the CPU profile appears")
		require.Equal(t, []byte{0x1f, 0x8b}, b[:2], "a gzipped profile")
	}
}
