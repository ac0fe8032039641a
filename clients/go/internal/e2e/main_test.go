package e2e_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Consume's goroutines (stream, handlers, acker) end when it returns; the servers the
// tests start end with them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
