package e2e_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Consume's goroutines (stream, handlers, acker) end when it returns; the servers the
// tests start end with them. fasthttp's Date goroutine is the process's, started with the
// first server that serves hooks and never stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
}
