//go:build unix

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRunPrintsEveryMode(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	require.NoError(t, run(&out, dir, 3, 2048, 5))
	require.Regexp(t, `^walwrite: 5 commits per mode of 3 frames of 2048 B \(6216 B per commit\)\n`, out.String())
	for _, m := range modes {
		require.Regexp(t, regexp.MustCompile(`(?m)^mode=`+regexp.QuoteMeta(m.name)+` wall_per_commit=\d+us system_cpu_per_commit=\d+us$`), out.String())
	}
	_, err := os.Stat(filepath.Join(dir, "walwrite.tmp"))
	require.ErrorIs(t, err, os.ErrNotExist, "the file is removed")
	require.Error(t, run(&out, dir, 0, 2048, 5))
}
