package app_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops what it started: no goroutine of the app outlives Stop. One is the
// process's, not an app's: fasthttp keeps the Date header of every server it runs with
// one goroutine, started with the first and never stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
}
