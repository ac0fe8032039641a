package webhookfile

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hookmap/hookmap/engine/diag"
	"github.com/hookmap/hookmap/engine/yamlsrc"
	"github.com/hookmap/hookmap/server/outgoing"
	"github.com/hookmap/hookmap/server/store"
)

// Entry is one declared webhook.
type Entry struct {
	Workspace    string
	Registration outgoing.Registration
	// Line and Col locate the entry; fields locates each field's value, by the field
	// path the Sender's violations use ("url", "headers[Authorization]", …).
	Line, Col int
	fields    map[string]*yaml.Node
	file      *yamlsrc.File
}

// Key names the entry's webhook: "workspace/id".
func (e *Entry) Key() string { return e.Workspace + "/" + e.Registration.ID }

// pos returns the position of a field path, falling back to its parent field and then to
// the entry: "headers[X]" → "headers", "next.data" → "next".
func (e *Entry) pos(field string) (line, col int) {
	for f := field; f != ""; {
		if n, ok := e.fields[f]; ok {
			return n.Line, n.Column
		}
		switch i := strings.LastIndexAny(f, ".["); {
		case i > 0:
			f = f[:i]
		default:
			f = ""
		}
	}
	return e.Line, e.Col
}

// File is a parsed webhooks file.
type File struct {
	Path    string
	Entries []*Entry
	// Broken names the webhooks ("workspace/id") whose entries have problems: they are not
	// applied and keep their previous version.
	Broken map[string]bool
	// Incomplete is set when the file could not be read whole (a syntax error) or an entry
	// has no usable id: a declared webhook missing from Entries and Broken may then still
	// be in the file, so none is deleted.
	Incomplete bool
}

// Getenv looks up an environment variable (os.LookupEnv).
type Getenv func(name string) (string, bool)

// keys maps every accepted key, in the plugin format's camelCase or hookmap's snake_case,
// to its field.
var keys = map[string]string{
	"id": "id", "workspace": "workspace", "url": "url", "method": "method", "headers": "headers",
	"queryParams": "query_params", "query_params": "query_params",
	"payload_encoding": "payload_encoding", "payloadEncoding": "payload_encoding",
	"content_type": "content_type", "contentType": "content_type",
	"timeout":      "timeout",
	"max_attempts": "max_attempts", "maxAttempts": "max_attempts",
	"signing_secret": "signing_secret", "signingSecret": "signing_secret",
	"follow_redirects": "follow_redirects", "followRedirects": "follow_redirects",
	"next": "next",
}

// nextKeys maps the keys of a next step to its fields.
var nextKeys = map[string]string{
	"webhook_id": "webhook_id", "webhookId": "webhook_id", "webhook": "webhook_id",
	"when": "when", "data": "data", "headers": "headers",
	"query_params": "query_params", "queryParams": "query_params",
}

// Parse reads a webhooks file: a list of registrations (or one registration). Entries
// with problems are left out of File.Entries and named in File.Broken when their id is
// known; every problem is a diagnostic. defaultWorkspace is the workspace of an entry
// without one.
func Parse(path string, data []byte, getenv Getenv, defaultWorkspace string) (*File, []diag.Diagnostic) {
	f := &File{Path: path, Broken: map[string]bool{}}
	p := &parser{path: path, getenv: getenv}
	src, err := yamlsrc.Parse(data)
	if err != nil {
		if pr, ok := err.(*yamlsrc.Problem); ok {
			p.add(pr.Line, pr.Col, "%s", pr.Message)
		} else {
			p.add(0, 0, "%v", err)
		}
		f.Incomplete = true
		return f, p.diags
	}
	p.src = src
	root := yamlsrc.Resolve(src.Root)
	var items []*yaml.Node
	switch {
	case root == nil:
	case root.Kind == yaml.SequenceNode:
		items = root.Content
	case root.Kind == yaml.MappingNode:
		items = []*yaml.Node{root}
	default:
		p.at(root, "the file must hold a list of webhooks (or one webhook), not %s", yamlsrc.KindName(root))
		f.Incomplete = true
		return f, p.diags
	}
	seen := map[string]*Entry{}
	for i, item := range items {
		before := len(p.diags)
		e := p.entry(i+1, item, defaultWorkspace)
		if e == nil {
			f.Incomplete = true
			continue
		}
		if first, dup := seen[e.Key()]; dup {
			p.at(e.fields["id"], "webhook %q is declared twice in workspace %q (first at line %d)", e.Registration.ID, e.Workspace, first.Line)
			continue
		}
		seen[e.Key()] = e
		if len(p.diags) > before {
			f.Broken[e.Key()] = true
			continue
		}
		f.Entries = append(f.Entries, e)
	}
	return f, p.diags
}

type parser struct {
	path   string
	src    *yamlsrc.File
	getenv Getenv
	diags  []diag.Diagnostic
}

func (p *parser) add(line, col int, format string, args ...any) {
	p.diags = append(p.diags, diag.Diagnostic{File: p.path, Line: line, Col: col, Message: fmt.Sprintf(format, args...)})
}

func (p *parser) at(n *yaml.Node, format string, args ...any) {
	line, col := 0, 0
	if n != nil {
		line, col = n.Line, n.Column
	}
	p.add(line, col, format, args...)
}

// entry reads one registration. It returns nil when the entry has no usable id (its
// problems are reported); otherwise the entry, whose other problems are reported too.
func (p *parser) entry(index int, n *yaml.Node, defaultWorkspace string) *Entry {
	n = yamlsrc.Resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		p.at(n, "webhook %d: must be a mapping (id, url, method, headers, …), not %s", index, yamlsrc.KindName(n))
		return nil
	}
	e := &Entry{Workspace: defaultWorkspace, Line: n.Line, Col: n.Column, fields: map[string]*yaml.Node{}, file: p.src}
	pairs, probs := yamlsrc.Pairs(n)
	for _, pr := range probs {
		p.add(pr.Line, pr.Col, "%s", pr.Message)
	}
	r := &e.Registration
	r.Source = store.SourceFile
	what := fmt.Sprintf("webhook %d", index)
	for _, pair := range pairs {
		if pair.Key == "id" {
			r.ID, _ = p.str(what, "id", pair.Value)
		}
	}
	if r.ID != "" {
		what = fmt.Sprintf("webhook %q", r.ID)
	}
	byField := map[string]yamlsrc.Pair{}
	for _, pair := range pairs {
		field, ok := keys[pair.Key]
		switch {
		case !ok:
			p.at(pair.KeyNode, "%s: unknown key %q (known: id, workspace, url, method, headers, queryParams, payload_encoding, content_type, timeout, max_attempts, signing_secret, follow_redirects, next)", what, pair.Key)
			continue
		case byField[field].KeyNode != nil:
			p.at(pair.KeyNode, "%s: %q and %q are the same field", what, byField[field].Key, pair.Key)
			continue
		}
		byField[field] = pair
		// A scalar is reported at its value, a mapping or a list at its key.
		if v := yamlsrc.Resolve(pair.Value); v != nil && v.Kind == yaml.ScalarNode {
			e.fields[field] = v
		} else {
			e.fields[field] = pair.KeyNode
		}
	}
	if r.ID == "" {
		p.at(n, "%s: id is required", what)
		return nil
	}
	if pair, ok := byField["workspace"]; ok {
		if ws, ok := p.str(what, "workspace", pair.Value); ok && ws != "" {
			e.Workspace = ws
		}
	}
	for field, pair := range byField {
		v := pair.Value
		switch field {
		case "url":
			r.URL, _ = p.expanded(what, field, v)
		case "method":
			r.Method, _ = p.str(what, field, v)
		case "payload_encoding":
			enc, _ := p.str(what, field, v)
			r.PayloadEncoding = strings.TrimPrefix(strings.ToLower(enc), "payload_encoding_")
		case "content_type":
			r.ContentType, _ = p.str(what, field, v)
		case "signing_secret":
			r.SigningSecret, _ = p.expanded(what, field, v)
		case "headers":
			r.Headers = p.headers(e, what, v)
		case "query_params":
			r.QueryParams = p.queryParams(e, what, v)
		case "timeout":
			r.Timeout = p.duration(what, field, v)
		case "max_attempts":
			r.MaxAttempts = p.integer(what, field, v)
		case "follow_redirects":
			r.FollowRedirects = p.boolean(what, field, v)
		case "next":
			r.Next = p.next(e, what, v)
		}
	}
	return e
}

// str reads a scalar as a string (null is "").
func (p *parser) str(what, field string, n *yaml.Node) (string, bool) {
	n = yamlsrc.Resolve(n)
	switch {
	case yamlsrc.IsNull(n):
		return "", true
	case n.Kind != yaml.ScalarNode:
		p.at(n, "%s: %s must be a string, not %s", what, field, yamlsrc.KindName(n))
		return "", false
	}
	return n.Value, true
}

// envRe matches ${env:NAME} and the escape $${.
var envRe = regexp.MustCompile(`\$\$\{|\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}|\$\{[^}]*\}?`)

// expanded reads a string and replaces each ${env:NAME} by the variable's value ($${ is
// a literal ${). An unset variable or another ${…} is a problem at its column.
func (p *parser) expanded(what, field string, n *yaml.Node) (string, bool) {
	s, ok := p.str(what, field, n)
	if !ok || !strings.Contains(s, "${") {
		return s, ok
	}
	var b strings.Builder
	last := 0
	for _, m := range envRe.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(s[last:m[0]])
		last = m[1]
		match := s[m[0]:m[1]]
		switch {
		case match == "$${":
			b.WriteString("${")
		case m[2] >= 0:
			name := s[m[2]:m[3]]
			val, set := p.getenv(name)
			if !set {
				p.atOffset(n, s, m[0], "%s: %s: environment variable %s is not set", what, field, name)
				ok = false
			}
			b.WriteString(val)
		default:
			p.atOffset(n, s, m[0], "%s: %s: %q is not ${env:NAME} (write $${ for a literal ${)", what, field, match)
			ok = false
		}
	}
	b.WriteString(s[last:])
	return b.String(), ok
}

// atOffset reports a problem at byte offset off of string s, the value of scalar n.
func (p *parser) atOffset(n *yaml.Node, s string, off int, format string, args ...any) {
	line, col := p.src.ValuePos(yamlsrc.Resolve(n), len([]rune(s[:off])))
	p.add(line, col, format, args...)
}

func (p *parser) headers(e *Entry, what string, n *yaml.Node) map[string]string {
	n = yamlsrc.Resolve(n)
	if yamlsrc.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.at(n, "%s: headers must be a mapping of name: value, not %s", what, yamlsrc.KindName(n))
		return nil
	}
	pairs, probs := yamlsrc.Pairs(n)
	for _, pr := range probs {
		p.add(pr.Line, pr.Col, "%s: headers: %s", what, pr.Message)
	}
	out := make(map[string]string, len(pairs))
	for _, pair := range pairs {
		field := "headers[" + pair.Key + "]"
		e.fields[field] = pair.Value
		if v, ok := p.expanded(what, field, pair.Value); ok {
			out[pair.Key] = v
		}
	}
	return out
}

func (p *parser) queryParams(e *Entry, what string, n *yaml.Node) []string {
	n = yamlsrc.Resolve(n)
	if yamlsrc.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.at(n, "%s: queryParams must be a list of names, not %s", what, yamlsrc.KindName(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		field := "query_params[" + strconv.Itoa(i) + "]"
		e.fields[field] = item
		if s, ok := p.str(what, field, item); ok {
			out = append(out, s)
		}
	}
	return out
}

// duration reads "10s", "1m30s" or a number of seconds.
func (p *parser) duration(what, field string, n *yaml.Node) time.Duration {
	n = yamlsrc.Resolve(n)
	if yamlsrc.IsNull(n) {
		return 0
	}
	if n.Kind == yaml.ScalarNode {
		if secs, err := strconv.ParseInt(n.Value, 10, 32); err == nil && n.ShortTag() == "!!int" {
			return time.Duration(secs) * time.Second
		}
		if d, err := time.ParseDuration(n.Value); err == nil {
			return d
		}
	}
	p.at(n, "%s: %s must be a duration such as 10s or 2m, or a number of seconds", what, field)
	return 0
}

func (p *parser) integer(what, field string, n *yaml.Node) int {
	n = yamlsrc.Resolve(n)
	if yamlsrc.IsNull(n) {
		return 0
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		if v, err := strconv.ParseInt(n.Value, 0, 32); err == nil {
			return int(v)
		}
	}
	p.at(n, "%s: %s must be an integer, not %s", what, field, yamlsrc.KindName(n))
	return 0
}

func (p *parser) boolean(what, field string, n *yaml.Node) bool {
	n = yamlsrc.Resolve(n)
	if yamlsrc.IsNull(n) {
		return false
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b
		}
	}
	p.at(n, "%s: %s must be true or false, not %s", what, field, yamlsrc.KindName(n))
	return false
}

// next reads a chain's next step; its mapping values are compiled here so that their
// problems are reported at their line and column.
func (p *parser) next(e *Entry, what string, n *yaml.Node) *store.WebhookNext {
	n = yamlsrc.Resolve(n)
	if yamlsrc.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.at(n, "%s: next must be a mapping (webhook_id, when, data, headers, query_params), not %s", what, yamlsrc.KindName(n))
		return nil
	}
	pairs, probs := yamlsrc.Pairs(n)
	for _, pr := range probs {
		p.add(pr.Line, pr.Col, "%s: next: %s", what, pr.Message)
	}
	nodes := map[string]*yaml.Node{}
	seen := map[string]string{}
	for _, pair := range pairs {
		field, ok := nextKeys[pair.Key]
		switch {
		case !ok:
			p.at(pair.KeyNode, "%s: next: unknown key %q (known: webhook_id, when, data, headers, query_params)", what, pair.Key)
			continue
		case seen[field] != "":
			p.at(pair.KeyNode, "%s: next: %q and %q are the same field", what, seen[field], pair.Key)
			continue
		}
		seen[field] = pair.Key
		nodes[field] = pair.Value
		if v := yamlsrc.Resolve(pair.Value); v != nil && v.Kind == yaml.ScalarNode {
			e.fields["next."+field] = v
		} else {
			e.fields["next."+field] = pair.KeyNode
		}
	}
	out := &store.WebhookNext{}
	if id, ok := nodes["webhook_id"]; ok {
		out.WebhookID, _ = p.str(what, "next.webhook_id", id)
	}
	delete(nodes, "webhook_id")
	for _, pr := range outgoing.CompileNextNode(p.src, p.path, nodes) {
		if pr.Line > 0 {
			p.add(pr.Line, pr.Col, "%s: %s: %s", what, pr.Field, pr.Message)
		} else {
			line, col := e.pos(pr.Field)
			p.add(line, col, "%s: %s: %s", what, pr.Field, pr.Message)
		}
	}
	for field, node := range nodes {
		v, err := yamlsrc.Plain(node)
		if err != nil {
			p.at(node, "%s: next.%s: %v", what, field, err)
			continue
		}
		switch field {
		case "when":
			out.When = v
		case "data":
			out.Data = v
		case "headers":
			out.Headers = v
		case "query_params":
			out.QueryParams = v
		}
	}
	return out
}
