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
// Each function carries a cost (see ByteCost and the cost model in cost.go): hashing,
// comparing and encoding are charged per byte, parseJson, toJson and jmespath per byte of
// JSON (they refuse values over MaxValueWeight), uuid a fixed amount. The model serves the
// estimate made at load (through the environment) and the runtime tracker (CostTracking),
// so a loop calling them on a large input reaches the mapping's cost limit.
//
// ToPlain converts a CEL result back to a plain value: maps with string keys, lists,
// bytes as base64 strings, timestamps as RFC 3339, durations as "1.5s", optional.none() as
// nil (a map entry holding it is left out), uint as int64.
package celfn
