package celfn

import (
	"context"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/stretchr/testify/require"
)

// sized bounds every input at 1 MiB for static estimates.
type sized struct{}

func (sized) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

func (sized) EstimateSize(cost.AstNode) *cost.SizeEstimate {
	s := cost.RangedSizeEstimate(0, 1<<20)
	return &s
}

func costEnv(t *testing.T) *cel.Env {
	t.Helper()
	base, err := BaseEnv()
	require.NoError(t, err)
	env, err := base.Extend(cel.Variable("s", cel.StringType), cel.Variable("b", cel.BytesType), cel.Variable("d", cel.DynType), cel.Variable("m", cel.DynType))
	require.NoError(t, err)
	return env
}

// chargedCost evaluates src with cost tracking (as the mapping engine does for expressions
// it cannot bound at load) and returns the cost charged.
func chargedCost(t *testing.T, env *cel.Env, src string, vars map[string]any) uint64 {
	t.Helper()
	ast, iss := env.Compile(src)
	require.NoError(t, iss.Err(), src)
	prg, err := env.Program(ast, CostTracking(), cel.EvalOptions(cel.OptTrackCost))
	require.NoError(t, err)
	vars[NowVar] = types.Timestamp{Time: time.Now()}
	_, det, err := prg.ContextEval(context.Background(), vars)
	require.NoError(t, err, src)
	require.NotNil(t, det.ActualCost(), src)
	return *det.ActualCost()
}

// TestCostProportionalToInput: each function is charged in proportion to what it works
// through, whether the checker resolved its overload (s, b) or it is dispatched at run time
// (d and m, dyn variables).
func TestCostProportionalToInput(t *testing.T) {
	env := costEnv(t)
	const n = 64 << 10
	str := strings.Repeat("a", n)
	items := make([]any, 2000)
	for i := range items {
		items[i] = map[string]any{"id": int64(1), "name": "abcdefghij"}
	}
	doc := map[string]any{"items": items}
	docJSON := len(`{"items":[]}`) + len(items)*len(`{"id":1,"name":"abcdefghij"},`) - 1
	docWeight := 1 + len("items") + 1 + len(items)*(1+len("id")+1+len("name")+1+len("abcdefghij"))
	json := `[` + strings.Repeat(`{"a":1},`, n/8) + `1]`
	tests := []struct {
		src  string
		want float64 // the charge of the call, give or take the few units of its arguments
	}{
		{`sha256(s)`, 0.1 * n},
		{`sha256(d)`, 0.1 * n},
		{`sha256(b)`, 0.1 * n},
		{`hmacSha256("k", s)`, 0.1 * n},
		{`hmacSha256(d, d)`, 0.2 * n},
		{`hex(b)`, 0.3 * n},
		{`hex(d)`, 0.3 * n},
		{`secureEquals(s, d)`, 0.1 * n},
		{`secureEquals(s, "x")`, 1},
		{`size(s)`, 0.1 * n},
		{`d.size()`, 0.1 * n},
		{`size([1, 2, 3])`, 1},
		{`parseLinkHeader(s)`, 0.2 * n},
		{`parseJson(m.json)`, 0.5 * float64(len(json))},
		{`toJson(m.doc)`, 0.5 * float64(docJSON)},
		{`jmespath(m.doc, "length(items)")`, 0.5 * float64(docWeight)},
		{`bigIntsAsStrings(m.doc)`, 0.5 * float64(docWeight)},
		{`uuid()`, UUIDCost},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			vars := map[string]any{"s": str, "b": []byte(str), "d": str, "m": map[string]any{"json": json, "doc": doc}}
			got := chargedCost(t, env, tc.src, vars)
			require.InDelta(t, tc.want, float64(got), 20, "charged %d", got)
		})
	}
}

// TestCostEstimate: the estimate made at load uses the same model, so an expression the
// estimate calls bounded is bounded at run time, and toJson and jmespath, whose work
// depends on a value's nested size, are never called bounded.
func TestCostEstimate(t *testing.T) {
	env := costEnv(t)
	tests := []struct {
		src      string
		min, max uint64 // bounds of the estimate's maximum
	}{
		{`sha256(s)`, 100_000, 110_000},
		{`hmacSha256(s, b)`, 200_000, 220_000},
		{`hex(sha256(s))`, 100_000, 110_100},
		{`hex(b)`, 300_000, 330_000},
		{`size(s) + s.size()`, 200_000, 220_000},
		{`parseJson(s)`, 500_000, 530_000},
		{`[sha256(s), sha256(s), sha256(s), sha256(s), sha256(s), sha256(s), sha256(s), sha256(s), sha256(s), sha256(s)]`, 1_000_000, 1_100_000},
		{`toJson(d)`, 1 << 62, 1<<64 - 1},
		{`jmespath(d, "a")`, 1 << 62, 1<<64 - 1},
		{`bigIntsAsStrings(d)`, 1 << 62, 1<<64 - 1},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			ast, iss := env.Compile(tc.src)
			require.NoError(t, iss.Err())
			est, err := env.EstimateCost(ast, sized{})
			require.NoError(t, err)
			require.GreaterOrEqual(t, est.Max, tc.min)
			require.LessOrEqual(t, est.Max, tc.max)
		})
	}
}

func TestWeight(t *testing.T) {
	v := map[string]any{"ab": []any{"xyz", int64(1), nil}}
	// map 1 + key 2 + list 1 + "xyz" 4 + 1 + 1
	require.Equal(t, uint64(10), Weight(v, 100))
	big := make([]any, 1000)
	for i := range big {
		big[i] = v
	}
	require.GreaterOrEqual(t, Weight(big, 50), uint64(50))
	require.Less(t, Weight(big, 50), uint64(70), "the walk stops at the limit")
}

func TestValuesOverMaxWeightRefused(t *testing.T) {
	big := strings.Repeat("x", MaxValueWeight+1)
	_, err := eval(t, `parseJson(data.s)`, map[string]any{"data": map[string]any{"s": big}})
	require.ErrorContains(t, err, "parseJson(): the value is larger than")
	_, err = eval(t, `toJson(data)`, map[string]any{"data": map[string]any{"s": big}})
	require.ErrorContains(t, err, "toJson(): the value is larger than")
	_, err = eval(t, `jmespath(data, "s")`, map[string]any{"data": map[string]any{"s": big}})
	require.ErrorContains(t, err, "jmespath(): the value is larger than")
	_, err = eval(t, `bigIntsAsStrings(data)`, map[string]any{"data": map[string]any{"s": big}})
	require.ErrorContains(t, err, "bigIntsAsStrings(): the value is larger than")
}

// TestCallCostNamesEveryFunction: the runtime estimator's switch covers every function of
// the cost model.
func TestCallCostNamesEveryFunction(t *testing.T) {
	for name, fc := range fnCosts {
		if fc.member {
			continue // charged under its function's name
		}
		args := []ref.Val{types.String("x"), types.String("y")}
		if name == "size" {
			args = args[:1]
		}
		require.NotNil(t, actualCost{}.CallCost(name, "", args, types.String("z")), name)
	}
	require.Nil(t, actualCost{}.CallCost("_+_", "", []ref.Val{types.Int(1), types.Int(2)}, types.Int(3)))
}
