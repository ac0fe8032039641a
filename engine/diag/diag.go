package diag

import (
	"fmt"
	"sort"
)

// Diagnostic is one problem found while loading a connector.
type Diagnostic struct {
	File      string
	Line, Col int
	Message   string
}

// String formats d as "file:line:col: message". A diagnostic about a whole file or
// folder (Line 0) prints as "file: message".
func (d Diagnostic) String() string {
	if d.Line <= 0 {
		return fmt.Sprintf("%s: %s", d.File, d.Message)
	}
	col := d.Col
	if col <= 0 {
		col = 1
	}
	return fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, col, d.Message)
}

// List collects diagnostics.
type List struct {
	items []Diagnostic
}

// Add appends a diagnostic.
func (l *List) Add(file string, line, col int, format string, args ...any) {
	l.items = append(l.items, Diagnostic{File: file, Line: line, Col: col, Message: fmt.Sprintf(format, args...)})
}

// Append appends diagnostics.
func (l *List) Append(ds ...Diagnostic) { l.items = append(l.items, ds...) }

// Len is the number of diagnostics collected.
func (l *List) Len() int { return len(l.items) }

// Items returns the diagnostics sorted by file, line, column and message.
func (l *List) Items() []Diagnostic {
	out := append([]Diagnostic(nil), l.items...)
	Sort(out)
	return out
}

// Sort orders diagnostics by file, line, column and message, and drops exact duplicates.
func Sort(ds []Diagnostic) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Message < b.Message
	})
}

// Dedup returns ds without consecutive exact duplicates (call after Sort).
func Dedup(ds []Diagnostic) []Diagnostic {
	if len(ds) < 2 {
		return ds
	}
	out := ds[:1]
	for _, d := range ds[1:] {
		if d != out[len(out)-1] {
			out = append(out, d)
		}
	}
	return out
}
