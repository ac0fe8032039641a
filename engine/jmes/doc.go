// Package jmes bridges hookmap's plain values and go-jmespath.
//
// go-jmespath knows only float64 as a number type: its comparisons and functions
// (length, sum, max_by, sort_by…) reject int64. Search therefore hands it a copy of the
// document with every integer as float64 and turns integral float64 results back into
// int64, so that comparing length(x) with a literal 2, sum(items[].n) and
// max_by(items, &n) work on JSON integers and an id 1234567 comes back as 1234567.
//
// Caveats: integers beyond ±2^53 lose precision on that path, and an integral float
// (2.0) comes back as the integer 2. Expressions that neither compare nor call functions
// (fields, indexes, projections, filters on truthiness…; see NumberSensitive) are
// searched on the plain values as they are, with no conversion and no caveat.
//
// Compiled expressions are cached in a bounded cache (Cached) for the CEL jmespath()
// function, whose expression may be computed at run time.
package jmes
