package jmes

import (
	"os"
	"testing"

	"github.com/hookmap/hookmap/engine/value"
)

func BenchmarkToJMES(b *testing.B) {
	raw, err := os.ReadFile("../testdata/bench/github/issues.json")
	if err != nil {
		b.Fatal(err)
	}
	v, err := value.Decode(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = ToJMES(v)
	}
}
