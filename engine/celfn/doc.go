// Package celfn is hookmap's CEL library and the bridge between CEL values and plain
// values (see engine/value).
//
// NewEnv builds the base environment every formula is compiled in: cel-go with optional
// types, cross-type numeric comparisons, the strings, encoders, math, lists, sets, bindings
// and two-variable comprehension extensions, and hookmap's functions (Library):
//
//	hmacSha256(key, msg) -> bytes   key and msg each a string or bytes
//	sha256(x) -> bytes              x a string or bytes
//	hex(x) -> string                lower-case hex of bytes (or of a string's UTF-8 bytes)
//	secureEquals(a, b) -> bool      constant-time equality of two strings or two bytes
//	uuid() -> string                a random (version 4) UUID
//	jmespath(value, expr) -> dyn    a JMESPath search over value (see engine/jmes)
//	now() -> timestamp              the current time
//	now                             the time the method started (a variable, same for every
//	                                formula of one run)
//	parseJson(string) -> dyn        parse JSON text (e.g. Slack's form field payload=)
//	toJson(value) -> string         encode a value as compact JSON
//
// ToPlain converts a CEL result back to a plain value: maps with string keys, lists,
// bytes as base64 strings, timestamps as RFC 3339, durations as "1.5s", optional.none() as
// nil (a map entry holding it is left out), uint as int64.
package celfn
