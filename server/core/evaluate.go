package core

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/engine/httpbody"
	"github.com/hookmap/hookmap/engine/value"
)

// MethodVerify is the name EvaluateMethod runs an event's or global webhook's verify
// block under.
const MethodVerify = "verify"

// verifyURLVar is the full URL the app called (a handle variable), which the schemes that
// sign it read (hubspot, trello, twilio); a verify evaluation without it gets a URL of
// this server.
const verifyURLVar = "url"

// EvaluateInput is an EvaluateMethod request.
type EvaluateInput struct {
	ConnectorKey     string
	EventKey         string // exactly one of EventKey and GlobalWebhookKey
	GlobalWebhookKey string
	Method           string // a method name, or "verify"
	Input            map[string]any
	AllowSideEffects bool
}

// EvaluateMethod runs one method (or a verify block) of a loaded connector on the given
// variables, for authors. Input keys must be variables of the method: a misspelled one
// (rawbody) would otherwise read as empty and the answer would mislead. A
// rest-api-mapping runs only with AllowSideEffects. A verify block answers
// {verified, reason?, message?} instead of failing, so the reason is precise.
func (c *Core) EvaluateMethod(ctx context.Context, in EvaluateInput) (any, error) {
	var v []engine.FieldViolation
	if in.ConnectorKey == "" {
		v = append(v, engine.FieldViolation{Field: "connector_key", Description: "required"})
	}
	if (in.EventKey == "") == (in.GlobalWebhookKey == "") {
		v = append(v, engine.FieldViolation{Field: "event_key", Description: "give exactly one of event_key and global_webhook_key"})
	}
	if in.Method == "" {
		v = append(v, engine.FieldViolation{Field: "method", Description: "required"})
	}
	if len(v) > 0 {
		return nil, Invalid(violationSummary("invalid EvaluateMethod request", v), v)
	}
	conn, err := c.Connector(in.ConnectorKey)
	if err != nil {
		return nil, err
	}
	var (
		methods map[string]*engine.Method
		vb      *engine.Verify
		where   string
	)
	if in.EventKey != "" {
		ev, ok := conn.Events[in.EventKey]
		if !ok {
			return nil, Errorf(codes.FailedPrecondition, "connector %q has no event %s", conn.Key, Q(in.EventKey)).WithReason(ReasonEventNotFound)
		}
		methods, vb, where = ev.Methods, ev.Verify, fmt.Sprintf("event %q", ev.Key)
	} else {
		gw, ok := conn.GlobalWebhooks[in.GlobalWebhookKey]
		if !ok {
			return nil, Errorf(codes.FailedPrecondition, "connector %q has no global webhook %s", conn.Key, Q(in.GlobalWebhookKey)).WithReason(ReasonGlobalWebhookNotFound)
		}
		methods, vb, where = map[string]*engine.Method{}, gw.Verify, fmt.Sprintf("global webhook %q", gw.Key)
		if gw.Handle != nil {
			methods[engine.MethodHandle] = gw.Handle
		}
	}
	input := in.Input
	if input == nil {
		input = map[string]any{}
	}
	if in.Method == MethodVerify {
		if vb == nil {
			return nil, Errorf(codes.FailedPrecondition, "%s of connector %q has no verify block", where, conn.Key).WithReason(ReasonMethodNotFound)
		}
		return c.evaluateVerify(ctx, vb, input)
	}
	name := in.Method
	if name == engine.AliasGetEventSelector {
		name = engine.MethodGetEventsSelector
	}
	m := methods[name]
	if m == nil {
		have := value.SortedKeys(methods)
		if vb != nil {
			have = append(have, MethodVerify)
			slices.Sort(have)
		}
		return nil, Errorf(codes.FailedPrecondition, "%s of connector %q has no method %s (it has: %s)", where, conn.Key, Q(in.Method), strings.Join(have, ", ")).WithReason(ReasonMethodNotFound)
	}
	if bad := engine.UnknownVars("input", in.Method, m.Vars, input); len(bad) > 0 {
		return nil, Invalid(violationSummary("input", bad), bad)
	}
	if m.Type == engine.TypeRESTAPIMapping && !in.AllowSideEffects {
		return nil, Errorf(codes.FailedPrecondition, "%s is a rest-api-mapping that calls the external app; set allow_side_effects to run it", m.File).WithReason(ReasonSideEffectsNotAllowed)
	}
	return m.Run(ctx, input, c.RunOptions())
}

// evaluateVerify runs a verify block on a request described by its handle's variables:
// headers (a map of a name to a string or a list of strings), rawBody (the exact body the
// signature covers), method (default POST), url (the full URL the app called, for schemes
// that sign it) and whatever the secret or condition reads (webhookSecret, state,
// connectorParameters…). data is parsed from rawBody by its Content-Type when not given.
func (c *Core) evaluateVerify(ctx context.Context, vb *engine.Verify, input map[string]any) (any, error) {
	if bad := engine.UnknownVars("input", MethodVerify, vb.Vars, input); len(bad) > 0 {
		return nil, Invalid(violationSummary("input", bad), bad)
	}
	vars := cloneVars(input)
	header, bad := headersFromInput(vars["headers"])
	var rawBody string
	if rb, ok := vars["rawBody"]; ok && rb != nil {
		s, isStr := rb.(string)
		if !isStr {
			bad = append(bad, engine.FieldViolation{Field: "input.rawBody", Description: "must be a string (the exact body of the request)"})
		}
		rawBody = s
	}
	method := http.MethodPost
	if mv, ok := vars["method"]; ok && mv != nil {
		s, isStr := mv.(string)
		if !isStr || s == "" {
			bad = append(bad, engine.FieldViolation{Field: "input.method", Description: "must be an HTTP method such as POST"})
		}
		method = s
	}
	url := strings.TrimRight(c.PublicURL, "/") + "/hooks/evaluate"
	if uv, ok := vars[verifyURLVar]; ok && uv != nil {
		s, isStr := uv.(string)
		if !isStr {
			bad = append(bad, engine.FieldViolation{Field: "input.url", Description: "must be a string (the full URL the app called)"})
		}
		url = s
	}
	if len(bad) > 0 {
		return nil, Invalid(violationSummary("input", bad), bad)
	}
	vars[verifyURLVar] = url
	vars["headers"], vars["method"], vars["rawBody"] = httpbody.LowerHeaders(header), method, rawBody
	_, hasData := vars["data"]
	_, hasBody := vars["body"]
	if !hasData && !hasBody && rawBody != "" {
		if data, err := httpbody.Parse(header.Get("Content-Type"), []byte(rawBody)); err == nil {
			vars["data"], vars["body"] = data, data
		}
	}
	out := c.Verify(ctx, vb, vars, &Incoming{Method: method, URL: url, Header: header, Body: []byte(rawBody)})
	res := map[string]any{"verified": out.OK, "scheme": vb.Scheme}
	if out.Skipped {
		res["skipped"] = true
	}
	if !out.OK {
		res["reason"], res["message"] = out.Reason, out.Message
	}
	return res, nil
}

// headersFromInput turns the headers variable of an EvaluateMethod input into an
// http.Header: each value a string (or a number or bool) or a list of them.
func headersFromInput(v any) (http.Header, []engine.FieldViolation) {
	h := http.Header{}
	if v == nil {
		return h, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return h, []engine.FieldViolation{{Field: "input.headers", Description: "must be a map of header names to strings"}}
	}
	var bad []engine.FieldViolation
	for _, k := range value.SortedKeys(m) {
		vals, ok := m[k].([]any)
		if !ok {
			vals = []any{m[k]}
		}
		for _, e := range vals {
			switch t := e.(type) {
			case string:
				h.Add(k, t)
			case int64, float64, bool:
				h.Add(k, fmt.Sprint(t))
			default:
				bad = append(bad, engine.FieldViolation{Field: "input.headers." + k, Description: "must be a string or a list of strings"})
			}
		}
	}
	return h, bad
}
