package celfn

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/hookmap/hookmap/engine/value"
)

// IsNone reports whether v is optional.none().
func IsNone(v ref.Val) bool {
	o, ok := v.(*types.Optional)
	return ok && !o.HasValue()
}

// ToPlain converts a CEL value to a plain value. Maps and lists that came into CEL as
// plain values are returned as they are (shared, not copied). A map entry whose value is
// optional.none() is left out; elsewhere optional.none() is null.
func ToPlain(v ref.Val) (any, error) { return toPlain(v, 0) }

func toPlain(v ref.Val, depth int) (any, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(t), nil
	case types.Int:
		return int64(t), nil
	case types.Uint:
		if uint64(t) > math.MaxInt64 {
			return float64(t), nil
		}
		return int64(t), nil
	case types.Double:
		return float64(t), nil
	case types.String:
		return string(t), nil
	case types.Bytes:
		return base64.StdEncoding.EncodeToString(t), nil
	case types.Timestamp:
		return t.Time.UTC().Format(time.RFC3339Nano), nil
	case types.Duration:
		return strconv.FormatFloat(t.Duration.Seconds(), 'f', -1, 64) + "s", nil
	case *types.Optional:
		if !t.HasValue() {
			return nil, nil
		}
		return toPlain(t.GetValue(), depth)
	case *types.Err:
		return nil, t
	case *types.Unknown:
		return nil, errors.New("the result depends on unknown values")
	case traits.Mapper:
		if m, ok := t.Value().(map[string]any); ok {
			return m, nil
		}
		if depth >= value.MaxDepth {
			return nil, fmt.Errorf("value %w", value.ErrTooDeep)
		}
		out := make(map[string]any, int(sizeOf(t)))
		it := t.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, err := keyString(k)
			if err != nil {
				return nil, err
			}
			ev := t.Get(k)
			if IsNone(ev) {
				continue // an entry whose value is optional.none() is left out
			}
			e, err := toPlain(ev, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ks, err)
			}
			out[ks] = e
		}
		return out, nil
	case traits.Lister:
		if l, ok := t.Value().([]any); ok {
			return l, nil
		}
		if depth >= value.MaxDepth {
			return nil, fmt.Errorf("value %w", value.ErrTooDeep)
		}
		n := sizeOf(t)
		out := make([]any, 0, n)
		for i := int64(0); i < n; i++ {
			e, err := toPlain(t.Get(types.Int(i)), depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out = append(out, e)
		}
		return out, nil
	case ref.Type:
		return t.TypeName(), nil
	}
	p, err := value.Plain(v.Value())
	if err != nil {
		return nil, fmt.Errorf("CEL value of type %s: %w", v.Type().TypeName(), err)
	}
	return p, nil
}

func sizeOf(v traits.Sizer) int64 {
	if n, ok := v.Size().(types.Int); ok {
		return int64(n)
	}
	return 0
}

func keyString(k ref.Val) (string, error) {
	switch t := k.(type) {
	case types.String:
		return string(t), nil
	case types.Int:
		return strconv.FormatInt(int64(t), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(t), 10), nil
	case types.Bool:
		return strconv.FormatBool(bool(t)), nil
	}
	return "", fmt.Errorf("map key of type %s cannot be a JSON key", k.Type().TypeName())
}
