// Package value defines hookmap's plain JSON-like values and their JSON encoding.
//
// A plain value is one of: nil, bool, int64, float64, string, []any, map[string]any.
// JSON integers decode to int64 and stay int64 (a GitHub id 1234567 never becomes
// 1.234567e+06); numbers with a fraction or an exponent decode to float64. Every package
// of hookmap that moves values between JSON, CEL, JMESPath, protobuf and the store uses
// this representation.
package value
