package app_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops what it started: no goroutine of the app outlives Stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
