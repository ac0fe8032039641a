// Package mapping compiles and evaluates hookmap mapping values.
//
// A mapping value is any YAML value. Maps and lists are walked; a map with exactly one
// key starting with "$" is a formula:
//
//	{$cel: EXPR}        a CEL expression (see engine/celfn for the environment)
//	{$jmespath: EXPR}   a JMESPath expression over the method's variables as one document
//	{$var: LOCATOR}     a path such as $.data.issue.id or $.data.items[0]
//	{$tpl: {template: "/repos/{{owner}}", values: {owner: MAPPING}}}
//	{$literal: VALUE}   VALUE as is, not walked
//
// Compile turns a yaml.Node into a Value once, reporting every problem with its
// position; Value.Eval evaluates it against a Scope (the variables of one run) without
// compiling or parsing anything. A map entry whose formula evaluates to CEL's
// optional.none() is left out of the map.
//
// Evaluation cost: a CEL expression whose worst case is bounded below CostLimit at compile
// time (no comprehension; inputs assumed up to MaxInputSize) runs without runtime cost
// tracking; every other one runs with cel.CostLimit, hookmap's functions' runtime costs
// (celfn.CostTracking), InterruptCheckFrequency and ContextEval.
//
// Evaluation time: Scope.SetTimeout (a run's limit) and WithTimeout (a context's) bound an
// evaluation. Tracked expressions that loop stop at the deadline; no formula that may take
// time starts after it (the error's cause is a *TimeoutError). Looking at the clock is not
// free, so a formula is weighed by its cost estimated at load, and the clock is read before
// a heavy one or once the light ones since the last look may have done clockEvery units of
// work together. For the same reason a WithTimeout context makes its timer only when its
// Done channel is needed, and a run in it (SetTimeout) looks at its deadline as at its own.
//
// Plain selections (data.issue.id, headers[?"x"].orValue(null),
// list.map(x, x.field)), and concatenations of string literals and such selections
// ("issue." + data.action) whose cost is bounded at load, are walked directly over the
// plain values with CEL's exact results, falling back to CEL for anything else, including
// every error. JMESPath expressions that
// neither compare nor call functions search the variables as they are; the others search a
// float64 copy of the variables they name, made once per scope (see engine/jmes).
//
// Value.Reads tells which variables a value may read (every identifier of its CEL
// expressions, the root names of its JMESPath ones, the first step of its locators, or all
// of them for a whole-document search), so that a caller can make only those.
package mapping
