package rest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hookmap/hookmap/engine/mapping"
	"github.com/hookmap/hookmap/engine/yamlsrc"
)

// DefaultTimeout applies to each request when the connector's api block sets none.
const DefaultTimeout = 30 * time.Second

// API is a connector's api block: the base URI, headers and timeout every request uses.
type API struct {
	BaseURI *mapping.Value
	Headers *mapping.Value
	Timeout time.Duration
}

// Request is one compiled HTTP request.
type Request struct {
	Key    string
	Method string
	Path   string
	When   *mapping.CEL

	PathParameters, Query, Headers, Data *mapping.Value
	Form                                 bool
	Allowed                              []int
	Pagination                           *Pagination
}

// DefaultMaxPages bounds a paginated request when its pagination block sets no maxPages.
const DefaultMaxPages = 100

// Pagination follows an app's pages: after each page, Items (over `response`, the page)
// gives the page's items and Next gives where the next page is: null or "" to stop, a URL
// (absolute on the same origin, or a path) or a map of query parameters set on the first
// request's URL. The request's response then carries `items` (every page's, in order)
// and `pages`; its other fields are the last page's.
type Pagination struct {
	Items, Next *mapping.Value
	MaxPages    int
}

// Method is a compiled rest-api-mapping file.
type Method struct {
	File            string
	Requests        []*Request
	Multi           bool
	ResponseMapping *mapping.Value
}

var (
	placeholderRe = regexp.MustCompile(`\{([^{}/]*)\}`)
	keyRe         = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	httpMethods   = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "HEAD": true, "OPTIONS": true}
)

type compiler struct {
	file  *yamlsrc.File
	path  string
	vars  []string
	probs []yamlsrc.Problem
}

func (c *compiler) problem(n *yaml.Node, format string, args ...any) {
	c.probs = append(c.probs, yamlsrc.At(n, format, args...))
}

func (c *compiler) mc(extra ...string) *mapping.Compiler {
	env, err := mapping.NewEnv(append(append([]string(nil), c.vars...), extra...)...)
	if err != nil {
		c.probs = append(c.probs, yamlsrc.Problem{Line: 1, Col: 1, Message: err.Error()})
		return &mapping.Compiler{File: c.file, Path: c.path}
	}
	return &mapping.Compiler{Env: env, File: c.file, Path: c.path}
}

func (c *compiler) take(mc *mapping.Compiler) {
	c.probs = append(c.probs, mc.Problems...)
	mc.Problems = nil
}

// Compile compiles a rest-api-mapping file whose method declares vars.
func Compile(f *yamlsrc.File, path string, vars []string) (*Method, []yamlsrc.Problem) {
	c := &compiler{file: f, path: path, vars: vars}
	m := &Method{File: path}
	root := yamlsrc.Resolve(f.Root)
	if root == nil || root.Kind != yaml.MappingNode {
		n := root
		p := yamlsrc.Problem{Line: 1, Col: 1, Message: "a rest-api-mapping file must be a mapping with path and method (or requests)"}
		if n != nil {
			p.Line, p.Col = n.Line, n.Column
		}
		return nil, []yamlsrc.Problem{p}
	}
	pairs, probs := yamlsrc.Pairs(root)
	c.probs = append(c.probs, probs...)
	var requestsNode, responseNode *yaml.Node
	single := map[string]yamlsrc.Pair{}
	for _, p := range pairs {
		switch p.Key {
		case "requests":
			requestsNode = p.KeyNode
		case "responseMapping":
			responseNode = p.Value
		case "path", "method", "requestMapping", "dataEncoding", "allowedStatusCodes", "pagination":
			single[p.Key] = p
		default:
			c.problem(p.KeyNode, "unknown key %q in a rest-api-mapping file (expected path, method, requestMapping, dataEncoding, allowedStatusCodes, pagination, responseMapping, or requests)", p.Key)
		}
	}
	if requestsNode != nil {
		m.Multi = true
		for k, p := range single {
			c.problem(p.KeyNode, "%s belongs inside each item of requests when the file has requests", k)
		}
		var reqsValue *yaml.Node
		for _, p := range pairs {
			if p.Key == "requests" {
				reqsValue = p.Value
			}
		}
		rs := yamlsrc.Resolve(reqsValue)
		if rs == nil || rs.Kind != yaml.SequenceNode || len(rs.Content) == 0 {
			c.problem(requestsNode, "requests must be a non-empty list of requests, each with a key")
		} else {
			seen := map[string]bool{}
			for _, item := range rs.Content {
				r := c.request(item, true)
				if r == nil {
					continue
				}
				if seen[r.Key] {
					c.problem(item, "duplicate request key %q", r.Key)
				}
				seen[r.Key] = true
				m.Requests = append(m.Requests, r)
			}
		}
	} else {
		if _, ok := single["path"]; !ok {
			c.problem(root, "a rest-api-mapping file needs a path (or a list of requests)")
		}
		if r := c.requestFrom(root, pairs, false); r != nil {
			m.Requests = []*Request{r}
		}
	}
	if responseNode != nil {
		var mc *mapping.Compiler
		if m.Multi {
			mc = c.mc("response", "responses")
		} else {
			mc = c.mc("response")
		}
		m.ResponseMapping = mc.Compile(responseNode)
		c.take(mc)
	}
	if len(c.probs) > 0 {
		return nil, c.probs
	}
	return m, nil
}

func (c *compiler) request(item *yaml.Node, multi bool) *Request {
	n := yamlsrc.Resolve(item)
	if n == nil || n.Kind != yaml.MappingNode {
		c.problem(item, "each item of requests must be a mapping with key, path, method…")
		return nil
	}
	pairs, probs := yamlsrc.Pairs(n)
	c.probs = append(c.probs, probs...)
	for _, p := range pairs {
		switch p.Key {
		case "key", "when", "path", "method", "requestMapping", "dataEncoding", "allowedStatusCodes", "pagination":
		default:
			c.problem(p.KeyNode, "unknown key %q in a request (expected key, when, path, method, requestMapping, dataEncoding, allowedStatusCodes, pagination)", p.Key)
		}
	}
	return c.requestFrom(n, pairs, multi)
}

func (c *compiler) requestFrom(n *yaml.Node, pairs []yamlsrc.Pair, multi bool) *Request {
	r := &Request{Method: "GET"}
	var extra []string
	if multi {
		extra = []string{"responses"}
	}
	var pathNode *yaml.Node
	ok := true
	for _, p := range pairs {
		switch p.Key {
		case "key":
			s, isStr := scalarString(p.Value)
			if !isStr || !keyRe.MatchString(s) {
				c.problem(p.Value, "a request key must be a name (letters, digits, _), got %s", yamlsrc.KindName(p.Value))
				ok = false
			}
			r.Key = s
		case "when":
			mc := c.mc(extra...)
			r.When = mc.CompileCEL(p.Value, true)
			c.take(mc)
		case "path":
			s, isStr := scalarString(p.Value)
			if !isStr || s == "" {
				c.problem(p.Value, "path must be a string such as /repos/{owner}/{repo}/hooks")
				ok = false
			}
			r.Path, pathNode = s, p.Value
		case "method":
			s, isStr := scalarString(p.Value)
			s = strings.ToUpper(s)
			if !isStr || !httpMethods[s] {
				c.problem(p.Value, "method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS")
				ok = false
			}
			r.Method = s
		case "dataEncoding":
			s, _ := scalarString(p.Value)
			switch s {
			case "json":
			case "form":
				r.Form = true
			default:
				c.problem(p.Value, "dataEncoding must be json or form")
				ok = false
			}
		case "allowedStatusCodes":
			codes, good := c.statusCodes(p.Value)
			ok = ok && good
			r.Allowed = codes
		case "pagination":
			pg, good := c.pagination(p.Value, extra)
			ok = ok && good
			r.Pagination = pg
		case "requestMapping":
			rm := yamlsrc.Resolve(p.Value)
			if yamlsrc.IsNull(rm) {
				continue
			}
			if rm.Kind != yaml.MappingNode {
				c.problem(p.Value, "requestMapping must be a mapping with pathParameters, query, headers, data")
				ok = false
				continue
			}
			rps, probs := yamlsrc.Pairs(rm)
			c.probs = append(c.probs, probs...)
			for _, q := range rps {
				mc := c.mc(extra...)
				v := mc.Compile(q.Value)
				c.take(mc)
				switch q.Key {
				case "pathParameters":
					r.PathParameters = v
				case "query":
					r.Query = v
				case "headers":
					r.Headers = v
				case "data":
					r.Data = v
				default:
					c.problem(q.KeyNode, "unknown key %q in requestMapping (expected pathParameters, query, headers, data)", q.Key)
				}
			}
		}
	}
	if multi && r.Key == "" {
		c.problem(n, "each request needs a key (its response is responses.KEY)")
		ok = false
	}
	if multi && r.Path == "" && pathNode == nil {
		c.problem(n, "request %q needs a path", r.Key)
		ok = false
	}
	if pathNode != nil {
		c.checkPlaceholders(r, pathNode)
	}
	if !ok {
		return nil
	}
	return r
}

func (c *compiler) pagination(n *yaml.Node, extra []string) (*Pagination, bool) {
	r := yamlsrc.Resolve(n)
	if r == nil || r.Kind != yaml.MappingNode {
		c.problem(n, "pagination must be a mapping with items, next and optionally maxPages")
		return nil, false
	}
	pairs, probs := yamlsrc.Pairs(r)
	c.probs = append(c.probs, probs...)
	pg := &Pagination{MaxPages: DefaultMaxPages}
	ok := true
	for _, p := range pairs {
		switch p.Key {
		case "items", "next":
			mc := c.mc(append([]string{"response"}, extra...)...)
			v := mc.Compile(p.Value)
			c.take(mc)
			if p.Key == "items" {
				pg.Items = v
			} else {
				pg.Next = v
			}
		case "maxPages":
			s, _ := scalarString(p.Value)
			m, err := strconv.Atoi(s)
			if err != nil || m < 1 || m > 10000 {
				c.problem(p.Value, "maxPages must be a whole number from 1 to 10000")
				ok = false
			}
			pg.MaxPages = m
		default:
			c.problem(p.KeyNode, "unknown key %q in pagination (expected items, next, maxPages)", p.Key)
		}
	}
	if pg.Items == nil || pg.Next == nil {
		c.problem(n, "pagination needs both items (the page's list) and next (the next page, null to stop)")
		ok = false
	}
	return pg, ok
}

func (c *compiler) checkPlaceholders(r *Request, pathNode *yaml.Node) {
	var keys map[string]bool
	if r.PathParameters != nil && r.PathParameters.IsMapping() {
		keys = map[string]bool{}
		for _, k := range r.PathParameters.Keys() {
			keys[k] = true
		}
	}
	for _, m := range placeholderRe.FindAllStringSubmatch(r.Path, -1) {
		name := m[1]
		if name == "" {
			c.problem(pathNode, "empty placeholder {} in path")
			continue
		}
		if r.PathParameters == nil {
			c.problem(pathNode, "path placeholder {%s} needs requestMapping.pathParameters.%s", name, name)
			continue
		}
		if keys != nil && !keys[name] {
			c.problem(pathNode, "path placeholder {%s} has no entry in requestMapping.pathParameters", name)
		}
	}
}

func (c *compiler) statusCodes(n *yaml.Node) ([]int, bool) {
	r := yamlsrc.Resolve(n)
	if r == nil || r.Kind != yaml.SequenceNode || len(r.Content) == 0 {
		c.problem(n, "allowedStatusCodes must be a non-empty list of HTTP status codes")
		return nil, false
	}
	var out []int
	ok := true
	for _, e := range r.Content {
		s, _ := scalarString(e)
		code, err := strconv.Atoi(s)
		if err != nil || code < 100 || code > 599 {
			c.problem(e, "%q is not an HTTP status code", s)
			ok = false
			continue
		}
		out = append(out, code)
	}
	return out, ok
}

func scalarString(n *yaml.Node) (string, bool) {
	r := yamlsrc.Resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode || r.ShortTag() == "!!null" {
		return "", false
	}
	return r.Value, true
}

// ParseTimeout parses a timeout written as a Go duration ("10s", "1m30s") or a number of
// seconds.
func ParseTimeout(n *yaml.Node) (time.Duration, error) { return ParseDuration(n, "timeout") }

// ParseDuration reads a positive duration (10s, 1m30s) or a number of seconds; name is
// the key, for the message.
func ParseDuration(n *yaml.Node, name string) (time.Duration, error) {
	s, ok := scalarString(n)
	if !ok {
		return 0, fmt.Errorf("%s must be a duration such as 10s, got %s", name, yamlsrc.KindName(n))
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if secs <= 0 {
			return 0, fmt.Errorf("%s must be positive", name)
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s %q is not a positive duration such as 10s or 1m", name, s)
	}
	return d, nil
}
