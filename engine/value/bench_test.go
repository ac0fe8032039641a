package value

import (
	"strings"
	"testing"
)

// A typical webhook body of about 1 KiB: decode (the single-pass decoder), of bytes and of
// a string, and the encoding/json decoder it replaced.
var benchBody = []byte(`{"id":"w1-1","action":"opened","user":{"id":1234567,"login":"octocat"},"text":"` +
	strings.Repeat("x", 900) + `"}`)

func BenchmarkDecode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(benchBody); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeString(b *testing.B) {
	s := string(benchBody)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeString(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEncodingJSON(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeStd(benchBody, MaxDepth); err != nil {
			b.Fatal(err)
		}
	}
}
