package celfn

import (
	"fmt"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Cost factors of hookmap's functions, in cel-go's cost units (one unit is about 50 ns of
// work, the cost of a simple operation). Each function is charged in proportion to the
// bytes or values it works through, so that a comprehension calling it on a large input
// reaches the cost limit instead of running unbounded:
//
//	hmacSha256, sha256, secureEquals   ByteCost per byte of input
//	hex                                ByteCost per byte read and per byte written
//	size(string)                       ByteCost per byte (cel-go counts runes by copying)
//	parseLinkHeader                    2×ByteCost per byte
//	parseJson                          JSONByteCost per byte of input
//	toJson                             JSONByteCost per byte of output
//	jmespath                           JMESPathWeightCost per unit of the searched value's
//	                                   weight (its size as JSON, about)
//	bigIntsAsStrings                   JMESPathWeightCost per unit of the value's weight
//	uuid                               UUIDCost
//
// The same model serves the estimate made at load (checker) and the runtime tracker, so an
// expression the estimate calls bounded is bounded at run time too. toJson, jmespath and
// bigIntsAsStrings work through whole nested values, whose size a static estimate cannot
// know: they are estimated as unbounded, which makes every expression that calls them
// tracked at run time.
const (
	ByteCost           = cost.StringTraversalCostFactor // 0.1
	JSONByteCost       = 0.5
	JMESPathWeightCost = 0.5
	UUIDCost           = 5
)

// MaxValueWeight bounds the values parseJson, toJson and jmespath take (their weight:
// about their size as JSON). A function call cannot be interrupted and is charged once it
// has returned, so the bound keeps one call short; a value this large exceeds the cost
// limit anyway.
const MaxValueWeight = 4 << 20

// fnCost is the cost of one function: its estimate at load, its charge at run time, and
// the overloads it covers.
type fnCost struct {
	estimate  cost.FunctionEstimator
	track     cost.FunctionTracker
	overloads []string
	member    bool // the overloads are member functions (x.f())
}

var fixed32 = cost.FixedSizeEstimate(32)

// fnCosts are the costs of hookmap's functions (and of cel-go's size of a string) by
// function name.
var fnCosts = map[string]fnCost{
	"hmacSha256": {linearEstimate(ByteCost, &fixed32, 0, 1), linearTrack(ByteCost, 0, 1),
		[]string{"hmacSha256_string_string", "hmacSha256_bytes_bytes", "hmacSha256_string_bytes", "hmacSha256_bytes_string"}, false},
	"sha256":           {linearEstimate(ByteCost, &fixed32, 0), linearTrack(ByteCost, 0), []string{"sha256_string", "sha256_bytes"}, false},
	"hex":              {hexEstimate, linearTrack(3*ByteCost, 0), []string{"hex_bytes", "hex_string"}, false},
	"secureEquals":     {linearEstimate(ByteCost, nil, 0), secureEqualsTrack, []string{"secureEquals_string_string", "secureEquals_bytes_bytes"}, false},
	"parseLinkHeader":  {linearEstimate(2*ByteCost, nil, 0), linearTrack(2*ByteCost, 0), []string{"parseLinkHeader_string"}, false},
	"parseJson":        {linearEstimate(JSONByteCost, nil, 0), linearTrack(JSONByteCost, 0), []string{"parseJson_string", "parseJson_bytes"}, false},
	"toJson":           {unboundedEstimate, toJSONTrack, []string{"toJson_dyn"}, false},
	"jmespath":         {unboundedEstimate, jmespathTrack, []string{"jmespath_dyn_string"}, false},
	"bigIntsAsStrings": {unboundedEstimate, jmespathTrack, []string{"bigIntsAsStrings_dyn"}, false},
	"uuid":             {fixedEstimate(UUIDCost), fixedTrack(UUIDCost), []string{"uuid"}, false},
	// cel-go prices the size of a string at 1 but counts its runes by copying it into a
	// []rune: charge it as the traversal it is. Other sizes keep cel-go's price.
	"size": {linearEstimate(ByteCost, nil, 0), stringSizeTrack, []string{overloads.SizeString}, false},
	// s.size(): the tracker names it "size" too; this entry only prices the member overload.
	"size/member": {targetEstimate(ByteCost), stringSizeTrack, []string{overloads.SizeStringInst}, true},
}

// costModel returns the cost model of hookmap's functions for the estimate at load and,
// for calls whose overload is known at load, the runtime tracker.
func costModel() cel.EnvOption {
	var models []cost.OverloadModel
	for _, fc := range fnCosts {
		for _, id := range fc.overloads {
			if fc.member {
				models = append(models, cost.MemberOverload(id, cost.ManualCost(fc.estimate, fc.track)))
			} else {
				models = append(models, cost.Overload(id, cost.ManualCost(fc.estimate, fc.track)))
			}
		}
	}
	return cel.CostModel(models...)
}

// CostTracking is the program option that charges hookmap's functions at run time when
// cost is tracked. The cost model registered by Library already covers calls whose
// overload the checker resolved; this covers the others, dispatched at run time because
// an argument is dyn (sha256(data.x)), which the tracker sees by function name only.
func CostTracking() cel.ProgramOption { return cel.CostTracking(actualCost{}) }

type actualCost struct{}

// CallCost is called for every call of a tracked expression, cel-go's functions included:
// a switch rejects those faster than a map lookup.
func (actualCost) CallCost(function, _ string, args []ref.Val, result ref.Val) *uint64 {
	switch function {
	case "hmacSha256", "sha256", "hex", "secureEquals", "parseLinkHeader", "parseJson", "toJson", "jmespath", "bigIntsAsStrings", "uuid", "size":
		return fnCosts[function].track(args, result)
	}
	return nil
}

// byteLen is the size a function works through for a string or bytes argument: its length
// in bytes (cel-go's own size of a string counts runes, which costs a copy).
func byteLen(v ref.Val) uint64 {
	switch t := v.(type) {
	case types.String:
		return uint64(len(t))
	case types.Bytes:
		return uint64(len(t))
	}
	return 1
}

func charge(base uint64, n uint64, factor float64) *uint64 {
	c := cost.SafeAdd(base, cost.SafeMultiplyByFactor(n, factor))
	return &c
}

// linearTrack charges one unit plus factor per byte of the arguments at idx.
func linearTrack(factor float64, idx ...int) cost.FunctionTracker {
	return func(args []ref.Val, _ ref.Val) *uint64 {
		var n uint64
		for _, i := range idx {
			if i < len(args) {
				n = cost.SafeAdd(n, byteLen(args[i]))
			}
		}
		return charge(cost.CallCost, n, factor)
	}
}

// linearEstimate estimates one unit plus factor per unit of size of the arguments at idx,
// with a result of size result (nil when it is not a string, bytes, list or map).
func linearEstimate(factor float64, result *cost.SizeEstimate, idx ...int) cost.FunctionEstimator {
	return func(est cost.Estimator, _ *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
		var sz cost.SizeEstimate
		for _, i := range idx {
			if i < len(args) {
				sz = sz.Add(cost.EstimateSize(est, args[i]))
			}
		}
		return cost.NewCallEstimate(sz.MultiplyByCostFactor(factor).Add(cost.FixedCostEstimate(cost.CallCost)), result)
	}
}

// targetEstimate estimates a member function charging factor per unit of its target's size.
func targetEstimate(factor float64) cost.FunctionEstimator {
	return func(est cost.Estimator, target *cost.AstNode, _ []cost.AstNode) *cost.CallEstimate {
		sz := cost.UnknownSizeEstimate()
		if target != nil {
			sz = cost.EstimateSize(est, *target)
		}
		return cost.NewCallEstimate(sz.MultiplyByCostFactor(factor).Add(cost.FixedCostEstimate(cost.CallCost)), nil)
	}
}

func hexEstimate(est cost.Estimator, _ *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	in := cost.EstimateSize(est, args[0])
	out := in.Add(in) // two hex digits per byte
	return cost.NewCallEstimate(in.Add(out).MultiplyByCostFactor(ByteCost).Add(cost.FixedCostEstimate(cost.CallCost)), &out)
}

// secureEqualsTrack charges the comparison of two values of the same length; values of
// different lengths are told apart at once.
func secureEqualsTrack(args []ref.Val, _ ref.Val) *uint64 {
	if len(args) != 2 || byteLen(args[0]) != byteLen(args[1]) {
		return charge(cost.CallCost, 0, 0)
	}
	return charge(cost.CallCost, byteLen(args[0]), ByteCost)
}

// unboundedEstimate is the estimate of a function whose work depends on the whole nested
// size of a value, which the estimate cannot know: it makes the expression tracked.
func unboundedEstimate(cost.Estimator, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return cost.NewCallEstimate(cost.UnknownCostEstimate(), nil)
}

func toJSONTrack(_ []ref.Val, result ref.Val) *uint64 {
	return charge(cost.CallCost, byteLen(result), JSONByteCost)
}

func stringSizeTrack(args []ref.Val, _ ref.Val) *uint64 {
	if len(args) != 1 {
		return nil
	}
	if _, ok := args[0].(types.String); !ok {
		return nil // lists, maps, bytes: cel-go's price
	}
	return charge(cost.CallCost, byteLen(args[0]), ByteCost)
}

// jmespathTrack charges per unit of the weight of the first argument (jmespath's searched
// value, bigIntsAsStrings' walked one).
func jmespathTrack(args []ref.Val, _ ref.Val) *uint64 {
	if len(args) == 0 {
		return charge(cost.CallCost, 0, 0)
	}
	plain, err := ToPlain(args[0])
	if err != nil {
		return charge(cost.CallCost, 0, 0)
	}
	return charge(cost.CallCost, Weight(plain, MaxValueWeight+1), JMESPathWeightCost)
}

func fixedEstimate(c uint64) cost.FunctionEstimator {
	return func(cost.Estimator, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
		return cost.NewCallEstimate(cost.FixedCostEstimate(c), nil)
	}
}

func fixedTrack(c uint64) cost.FunctionTracker {
	return func([]ref.Val, ref.Val) *uint64 { return &c }
}

// Weight is about the size of a plain value written as JSON: the length of its strings and
// map keys plus one per value. The walk stops once the weight reaches limit (and returns
// at least limit then), so that weighing a huge value, or one that holds the same large
// value many times, stays cheap.
func Weight(v any, limit uint64) uint64 {
	var w uint64
	var walk func(v any) bool
	walk = func(v any) bool {
		w++
		switch t := v.(type) {
		case string:
			w += uint64(len(t))
		case map[string]any:
			for k, e := range t {
				w += uint64(len(k))
				if w >= limit || !walk(e) {
					return false
				}
			}
		case []any:
			for _, e := range t {
				if w >= limit || !walk(e) {
					return false
				}
			}
		}
		return w < limit
	}
	walk(v)
	return w
}

// tooLarge is the error of a function given a value over MaxValueWeight.
func tooLarge(fn string) ref.Val {
	return types.NewErr("%s", fmt.Sprintf("%s(): the value is larger than %d bytes", fn, MaxValueWeight))
}
