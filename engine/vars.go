package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hookmap/hookmap/engine/value"
)

// connectionVars are the variables every method of a connection has.
var connectionVars = []string{"connection", "connectorParameters", "credentials"}

// requestVars are the variables taken from an incoming request; url is the full URL the
// app called (the public URL, the path and the query), for apps that sign it.
var requestVars = []string{"method", "query", "data", "body", "headers", "rawBody", "url"}

func with(base []string, more ...string) []string {
	return append(append([]string(nil), base...), more...)
}

// methodVars returns the variables a method declares (DESIGN.md §4 "Method variables and
// results"), besides `now`.
func methodVars(name string) []string {
	switch name {
	case MethodSubscribe:
		return with(connectionVars, "webhookUri", "webhookSecret", "parameters", "subscriptionId", "state")
	case MethodHandle:
		return eventHandleVars()
	case MethodUnsubscribe:
		return with(connectionVars, "state", "parameters")
	case MethodRefresh:
		return with(connectionVars, "state", "webhookUri", "webhookSecret", "parameters")
	case MethodGetEventsSelector, MethodList:
		return with(connectionVars, "parameters")
	case MethodDelete:
		return with(connectionVars, "webhook", "parameters")
	case MethodFetch:
		return with(connectionVars, "state", "parameters", "webhookSecret", "delivery")
	}
	return with(connectionVars)
}

// eventHandleVars are the variables of an event's handle (and of its verify block).
// webhookSecret is there so that a delivery arriving while subscribe still runs (GitHub's
// first ping, Graph's validation) can be verified before the state is stored.
func eventHandleVars() []string {
	return with(with(connectionVars, requestVars...), "state", "parameters", "webhookSecret")
}

// globalHandleVars are the variables of a global webhook's handle (and verify): no
// connection, and parameters are the workspace's connector parameters.
func globalHandleVars() []string {
	return with(requestVars, "parameters")
}

// methodsOf lists the methods an event of type t may declare.
func methodsOf(t ImplementationType) []string {
	if t == TypeGlobalWebhook {
		return []string{MethodGetEventsSelector, MethodHandle, MethodFetch}
	}
	return []string{MethodSubscribe, MethodHandle, MethodUnsubscribe, MethodRefresh, MethodList, MethodDelete, MethodFetch}
}

// allMethods lists every method name, for messages.
var allMethods = []string{MethodSubscribe, MethodHandle, MethodUnsubscribe, MethodRefresh, MethodList, MethodDelete, MethodFetch, MethodGetEventsSelector}

func canonicalMethod(name string) string {
	if name == AliasGetEventSelector {
		return MethodGetEventsSelector
	}
	return name
}

func sortedVars(vars []string) []string {
	out := slices.Clone(vars)
	slices.Sort(out)
	return slices.Compact(out)
}

// UnknownVars checks the names given as a method's variables (EvaluateMethod's input)
// against the known ones: one FieldViolation per unknown name, at field.<name>, naming a
// close known name when there is one and listing them all. A misspelled variable would
// otherwise read as empty, and the method would answer something else than it would.
func UnknownVars(field, what string, known []string, given map[string]any) []FieldViolation {
	var out []FieldViolation
	for _, k := range value.SortedKeys(given) {
		if slices.Contains(known, k) {
			continue
		}
		hint := ""
		if s := closest(k, known); s != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", s)
		}
		out = append(out, FieldViolation{
			Field:       field + "." + k,
			Description: fmt.Sprintf("unknown variable %q%s; the variables of %s are %s", k, hint, what, strings.Join(known, ", ")),
		})
	}
	return out
}

// closest returns the known name nearest to name (same letters in another case, or at
// most two edits away), or "".
func closest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return k
		}
		if d := editDistance(strings.ToLower(name), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
