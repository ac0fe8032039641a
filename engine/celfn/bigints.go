package celfn

import (
	"strconv"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// maxSafeInt is the largest integer a double holds exactly (2^53 - 1): beyond it, a
// client reading a record as google.protobuf.Value (JSON numbers in JavaScript too) sees
// another number.
const maxSafeInt = 1<<53 - 1

// bigIntsAsStrings returns v with every integer beyond ±(2^53 - 1), at any depth, replaced
// by its decimal string; other values are unchanged. Records whose ids or amounts are
// 64-bit integers (Square, Zoom) stay exact for every client.
func bigIntsAsStrings(v ref.Val) ref.Val {
	plain, err := ToPlain(v)
	if err != nil {
		return types.NewErr("bigIntsAsStrings(): %s", err.Error())
	}
	if Weight(plain, MaxValueWeight+1) > MaxValueWeight {
		return tooLarge("bigIntsAsStrings")
	}
	return types.DefaultTypeAdapter.NativeToValue(BigIntsAsStrings(plain))
}

// BigIntsAsStrings is bigIntsAsStrings for Go callers, on a plain value. Maps and lists
// holding a big integer are copied; the others are returned as they are.
func BigIntsAsStrings(v any) any {
	out, _ := bigInts(v)
	return out
}

// bigInts returns v with its big integers as strings and whether it changed anything.
func bigInts(v any) (any, bool) {
	switch t := v.(type) {
	case int64:
		if t > maxSafeInt || t < -maxSafeInt {
			return strconv.FormatInt(t, 10), true
		}
	case uint64:
		if t > maxSafeInt {
			return strconv.FormatUint(t, 10), true
		}
	case map[string]any:
		var out map[string]any
		for k, e := range t {
			n, changed := bigInts(e)
			if !changed {
				continue
			}
			if out == nil {
				out = make(map[string]any, len(t))
				for k2, e2 := range t {
					out[k2] = e2
				}
			}
			out[k] = n
		}
		if out != nil {
			return out, true
		}
	case []any:
		var out []any
		for i, e := range t {
			n, changed := bigInts(e)
			if !changed {
				continue
			}
			if out == nil {
				out = append([]any(nil), t...)
			}
			out[i] = n
		}
		if out != nil {
			return out, true
		}
	}
	return v, false
}
