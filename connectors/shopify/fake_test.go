package shopify_test

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	apiVersion   = "2025-07"
	shopDomain   = "acme-store.myshopify.com"
	invalidToken = `{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}`
)

// knownTopics are the topics the fake shop accepts (a subset of Shopify's).
var knownTopics = []string{
	"orders/create", "orders/updated", "orders/paid", "products/create", "products/update",
	"products/delete", "customers/create", "app/uninstalled",
}

// fakeShop is a Shopify store with the Admin REST Webhook resource: it checks the access
// token and request bodies like Shopify does, pages lists with page_info cursors in Link
// headers, records every call, and sends deliveries signed with the app's client secret.
type fakeShop struct {
	t            *testing.T
	srv          *httptest.Server
	token        string
	clientSecret string
	pageSize     int // the most webhooks a page holds, whatever limit asks

	mu         sync.Mutex
	hooks      map[int64]*shopWebhook
	nextID     int64
	calls      []string // "METHOD path?query"
	creates    []map[string]any
	dropCreate bool // the next create stores the webhook, then drops the connection unanswered
}

// shopWebhook is the REST Webhook resource.
type shopWebhook struct {
	ID                  int64    `json:"id"`
	Address             string   `json:"address"`
	Topic               string   `json:"topic"`
	CreatedAt           string   `json:"created_at"`
	UpdatedAt           string   `json:"updated_at"`
	Format              string   `json:"format"`
	Fields              []string `json:"fields"`
	MetafieldNamespaces []string `json:"metafield_namespaces"`
	APIVersion          string   `json:"api_version"`
}

func newFakeShop(t *testing.T) *fakeShop {
	f := &fakeShop{
		t: t, token: "shpat_0123456789abcdef", clientSecret: "app-client-secret",
		pageSize: 2, hooks: map[int64]*shopWebhook{}, nextID: 1047897600,
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// baseURI is the Admin API base a connection points at.
func (f *fakeShop) baseURI() string { return f.srv.URL + "/admin/api/" + apiVersion }

func (f *fakeShop) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeShop) writeRaw(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

var webhookPath = regexp.MustCompile(`^/webhooks/([0-9]+)\.json$`)

func (f *fakeShop) serve(w http.ResponseWriter, r *http.Request) {
	call := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		call += "?" + r.URL.RawQuery
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()

	prefix := "/admin/api/" + apiVersion
	if !strings.HasPrefix(r.URL.Path, prefix+"/") {
		f.writeRaw(w, 404, `{"errors":"Not Found"}`)
		return
	}
	if r.Header.Get("X-Shopify-Access-Token") != f.token {
		f.writeRaw(w, 401, invalidToken)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, prefix)
	switch {
	case path == "/webhooks.json" && r.Method == http.MethodGet:
		f.list(w, r)
	case path == "/webhooks.json" && r.Method == http.MethodPost:
		f.create(w, r)
	case webhookPath.MatchString(path) && r.Method == http.MethodDelete:
		id, _ := strconv.ParseInt(webhookPath.FindStringSubmatch(path)[1], 10, 64)
		f.mu.Lock()
		_, ok := f.hooks[id]
		delete(f.hooks, id)
		f.mu.Unlock()
		if !ok {
			f.writeRaw(w, 404, `{"errors":"Not Found"}`)
			return
		}
		f.writeRaw(w, 200, `{}`)
	default:
		f.writeRaw(w, 404, `{"errors":"Not Found"}`)
	}
}

// pageCursor is what a page_info token stands for: the filters of the first request and
// the last id shown. Shopify's tokens are opaque; this one is base64 JSON.
type pageCursor struct {
	Address string `json:"address,omitempty"`
	Topic   string `json:"topic,omitempty"`
	AfterID int64  `json:"after_id"`
}

func (f *fakeShop) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 50
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 250 {
			f.writeRaw(w, 400, `{"errors":{"limit":"Must be between 1 and 250"}}`)
			return
		}
		limit = n
	}
	var cur pageCursor
	if pi := q.Get("page_info"); pi != "" {
		// Like Shopify: with page_info, only limit and fields may be given.
		for k := range q {
			if k != "page_info" && k != "limit" && k != "fields" {
				f.writeRaw(w, 400, fmt.Sprintf(`{"errors":{"page_info":"%s is not allowed with page_info"}}`, k))
				return
			}
		}
		b, err := base64.RawURLEncoding.DecodeString(pi)
		if err != nil || json.Unmarshal(b, &cur) != nil {
			f.writeRaw(w, 400, `{"errors":{"page_info":"Invalid value."}}`)
			return
		}
	} else {
		cur = pageCursor{Address: q.Get("address"), Topic: q.Get("topic")}
	}
	size := min(limit, f.pageSize)

	f.mu.Lock()
	var all []shopWebhook
	for _, h := range f.hooks {
		if (cur.Address == "" || h.Address == cur.Address) && (cur.Topic == "" || h.Topic == cur.Topic) && h.ID > cur.AfterID {
			all = append(all, *h)
		}
	}
	f.mu.Unlock()
	slices.SortFunc(all, func(a, b shopWebhook) int { return cmp.Compare(a.ID, b.ID) })

	page := all
	var links []string
	pageURL := func(c pageCursor) string {
		b, _ := json.Marshal(c)
		v := url.Values{"limit": {strconv.Itoa(limit)}, "page_info": {base64.RawURLEncoding.EncodeToString(b)}}
		return "http://" + r.Host + r.URL.Path + "?" + v.Encode()
	}
	if q.Get("page_info") != "" {
		// A cursor back to the start (the fake does not honour it; the connector never follows it).
		links = append(links, fmt.Sprintf(`<%s>; rel="previous"`, pageURL(pageCursor{Address: cur.Address, Topic: cur.Topic})))
	}
	if len(all) > size {
		page = all[:size]
		next := cur
		next.AfterID = page[len(page)-1].ID
		links = append(links, fmt.Sprintf(`<%s>; rel="next"`, pageURL(next)))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	if page == nil {
		page = []shopWebhook{}
	}
	f.writeJSON(w, 200, map[string]any{"webhooks": page})
}

func (f *fakeShop) create(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		f.writeRaw(w, 415, `{"errors":"Unsupported Media Type"}`)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		f.writeRaw(w, 400, `{"errors":{"error":"822: unexpected token"}}`)
		return
	}
	f.mu.Lock()
	f.creates = append(f.creates, body)
	f.mu.Unlock()
	hook, ok := body["webhook"].(map[string]any)
	if !ok {
		f.writeRaw(w, 400, `{"errors":{"webhook":"Required parameter missing or invalid"}}`)
		return
	}
	topic, _ := hook["topic"].(string)
	address, _ := hook["address"].(string)
	format, _ := hook["format"].(string)
	errs := map[string][]string{}
	if !slices.Contains(knownTopics, topic) {
		errs["topic"] = []string{fmt.Sprintf("Invalid topic specified: %s. Do you have all the required scopes for the topic?", topic)}
	}
	if u, err := url.Parse(address); address == "" || err != nil || u.Host == "" {
		errs["address"] = []string{"can't be blank"}
	}
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "xml" {
		errs["format"] = []string{"is not included in the list"}
	}
	var fields []string
	if v, ok := hook["fields"]; ok {
		list, ok := v.([]any)
		for _, x := range list {
			s, isStr := x.(string)
			ok = ok && isStr
			fields = append(fields, s)
		}
		if !ok {
			errs["fields"] = []string{"must be an array of strings"}
		}
	}
	if fields == nil {
		fields = []string{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.hooks {
		if h.Address == address && h.Topic == topic {
			errs["address"] = append(errs["address"], "for this topic has already been taken")
		}
	}
	if len(errs) > 0 {
		f.writeJSON(w, 422, map[string]any{"errors": errs})
		return
	}
	f.nextID++
	now := time.Now().Format("2006-01-02T15:04:05-07:00")
	h := &shopWebhook{
		ID: f.nextID, Address: address, Topic: topic, CreatedAt: now, UpdatedAt: now,
		Format: format, Fields: fields, MetafieldNamespaces: []string{}, APIVersion: apiVersion,
	}
	f.hooks[h.ID] = h
	if f.dropCreate {
		// Stored, but the answer is lost: the connection closes before any response.
		f.dropCreate = false
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	}
	f.writeJSON(w, 201, map[string]any{"webhook": h})
}

// add stores a webhook as if created earlier (by hookmap or by someone else).
func (f *fakeShop) add(address, topic string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.hooks[f.nextID] = &shopWebhook{ID: f.nextID, Address: address, Topic: topic, Format: "json", APIVersion: apiVersion}
	return f.nextID
}

// webhooks is a copy of the stored webhooks in id order.
func (f *fakeShop) webhooks() []shopWebhook {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []shopWebhook
	for _, h := range f.hooks {
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b shopWebhook) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// count is how many calls started with prefix ("POST /admin/api/…").
func (f *fakeShop) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeShop) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// delivery is one webhook request as Shopify sends it.
type delivery struct {
	Topic     string
	WebhookID string // X-Shopify-Webhook-Id: the same on Shopify's retries
	EventID   string // X-Shopify-Event-Id
	Body      string
	Secret    string // signing key; the shop's client secret when empty
	Signature string // X-Shopify-Hmac-Sha256 as given when non-empty
}

type sent struct {
	Status int
	Body   string
}

// signWith is Shopify's X-Shopify-Hmac-Sha256: base64(HMAC-SHA256(secret, raw body)).
func signWith(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// sign signs body with the shop's client secret.
func (f *fakeShop) sign(body string) string { return signWith(f.clientSecret, body) }

// send POSTs d to address the way Shopify does: JSON body, X-Shopify-* headers, and
// X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(client secret, raw body)).
func (f *fakeShop) send(address string, d delivery) sent {
	f.t.Helper()
	secret := d.Secret
	if secret == "" {
		secret = f.clientSecret
	}
	sig := d.Signature
	if sig == "" {
		sig = signWith(secret, d.Body)
	}
	req, err := http.NewRequest(http.MethodPost, address, bytes.NewReader([]byte(d.Body)))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Shopify-Captain-Hook")
	req.Header.Set("X-Shopify-Topic", d.Topic)
	req.Header.Set("X-Shopify-Hmac-Sha256", sig)
	req.Header.Set("X-Shopify-Shop-Domain", shopDomain)
	req.Header.Set("X-Shopify-API-Version", apiVersion)
	req.Header.Set("X-Shopify-Triggered-At", time.Now().UTC().Format(time.RFC3339Nano))
	if d.WebhookID != "" {
		req.Header.Set("X-Shopify-Webhook-Id", d.WebhookID)
	}
	if d.EventID != "" {
		req.Header.Set("X-Shopify-Event-Id", d.EventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return sent{Status: resp.StatusCode, Body: string(b)}
}
