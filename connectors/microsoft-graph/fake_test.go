package microsoftgraph_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGraph is Microsoft Graph's subscriptions API (under /v1.0) as the connector uses it:
// create (with the synchronous validationToken handshake), list (paged with an absolute
// @odata.nextLink), update (renew), delete. It checks the bearer token and the request
// bodies like Graph does, records every call, and sends change notifications in Graph's
// format.
type fakeGraph struct {
	t        *testing.T
	srv      *httptest.Server
	token    string
	tenantID string
	appID    string
	pageSize int
	maxLife  time.Duration // the resource's maximum subscription length
	now      func() time.Time

	// The Microsoft identity platform of the tenant (…/oauth2/v2.0/authorize and /token).
	clientID, clientSecret string
	tokenTTL               time.Duration // lifetime of the access tokens it issues
	login                  *fakeLogin

	mu        sync.Mutex
	subs      map[string]*graphSub
	nextID    int
	calls     []string // "METHOD /path"
	posts     []map[string]any
	patches   []map[string]any
	validated []validation
	loseNext  bool // store the next created subscription, then drop the connection unanswered
}

// graphSub is a subscription as Graph keeps it.
type graphSub struct {
	ID                        string  `json:"id"`
	Resource                  string  `json:"resource"`
	ApplicationID             string  `json:"applicationId"`
	ChangeType                string  `json:"changeType"`
	ClientState               *string `json:"clientState"`
	NotificationURL           string  `json:"notificationUrl"`
	LifecycleNotificationURL  *string `json:"lifecycleNotificationUrl"`
	ExpirationDateTime        string  `json:"expirationDateTime"`
	CreatorID                 string  `json:"creatorId"`
	LatestSupportedTLSVersion string  `json:"latestSupportedTlsVersion"`
	NotificationURLAppID      *string `json:"notificationUrlAppId"`
	IncludeResourceData       *bool   `json:"includeResourceData"`
}

// validation is one validation request the fake made and how it was answered.
type validation struct {
	URL, Token string
}

func newFakeGraph(t *testing.T) *fakeGraph {
	f := &fakeGraph{
		t: t, token: "eyJ0eXAiOiJKV1QiLCJub25jZSI6ImZha2UifQ.graph-token", pageSize: 2,
		tenantID: "84bd8158-6d4d-4958-8b9f-9d6445542f95", appID: "24d3b144-21ae-4080-943f-7067b395b913",
		maxLife: 10080 * time.Minute, subs: map[string]*graphSub{}, now: time.Now,
		clientID: "24d3b144-21ae-4080-943f-7067b395b913", clientSecret: "Qk18Q~fake.client-secret_0123456789abcdefgh",
		tokenTTL: time.Hour, login: newFakeLogin(),
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// baseURI is what a connection's baseUri parameter is set to (Graph's form: host + /v1.0).
func (f *fakeGraph) baseURI() string { return f.srv.URL + "/v1.0" }

func graphError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"innerError": map[string]any{"date": time.Now().UTC().Format("2006-01-02T15:04:05"), "request-id": "0b8c5d2a-1e3f-4c7a-9d6b-2f1e0a9c8b7d"},
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeGraph) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	token := f.token
	f.mu.Unlock()
	switch {
	case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/authorize"):
		f.authorize(w, r)
		return
	case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
		f.issueToken(w, r)
		return
	}
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if bearer != token && !f.login.valid(bearer, f.now()) {
		f.mu.Lock()
		f.calls[len(f.calls)-1] += " 401"
		f.mu.Unlock()
		graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1.0")
	switch {
	case path == "/subscriptions" && r.Method == http.MethodGet:
		f.list(w, r)
	case path == "/subscriptions" && r.Method == http.MethodPost:
		f.create(w, r)
	case strings.HasPrefix(path, "/subscriptions/") && r.Method == http.MethodPatch:
		f.update(w, r, strings.TrimPrefix(path, "/subscriptions/"))
	case strings.HasPrefix(path, "/subscriptions/") && r.Method == http.MethodDelete:
		f.delete(w, strings.TrimPrefix(path, "/subscriptions/"))
	default:
		graphError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", path))
	}
}

// list answers pages of pageSize subscriptions in id order; @odata.nextLink is an absolute
// URL carrying a $skiptoken, as Graph's.
func (f *fakeGraph) list(w http.ResponseWriter, r *http.Request) {
	skip, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
	f.mu.Lock()
	all := f.sortedLocked()
	f.mu.Unlock()
	end := min(skip+f.pageSize, len(all))
	page := []map[string]any{}
	for _, s := range all[min(skip, len(all)):end] {
		m := subJSON(s)
		m["clientState"] = nil // Graph does not return the clientState when listing
		page = append(page, m)
	}
	resp := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions", "value": page}
	if end < len(all) {
		resp["@odata.nextLink"] = f.baseURI() + "/subscriptions?$skiptoken=" + strconv.Itoa(end)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (f *fakeGraph) sortedLocked() []*graphSub {
	out := make([]*graphSub, 0, len(f.subs))
	for _, s := range f.subs {
		c := *s
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func subJSON(s *graphSub) map[string]any {
	b, _ := json.Marshal(s)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity"
	return m
}

var changeTypes = map[string]bool{"created": true, "updated": true, "deleted": true}

func validChangeType(s string) bool {
	for _, p := range strings.Split(s, ",") {
		if !changeTypes[p] {
			return false
		}
	}
	return s != ""
}

// checkExpiry is Graph's check of an expirationDateTime: in the future and within the
// resource's maximum length.
func (f *fakeGraph) checkExpiry(v any) (time.Time, string) {
	s, _ := v.(string)
	exp, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Sprintf("Invalid expirationDateTime %q.", s)
	}
	now := f.now()
	if !exp.After(now) {
		return time.Time{}, "Subscription expiration can only be in the future."
	}
	if exp.After(now.Add(f.maxLife + time.Minute)) {
		return time.Time{}, fmt.Sprintf("Subscription expiration can only be %d minutes in the future.", int(f.maxLife.Minutes()))
	}
	return exp, ""
}

func (f *fakeGraph) create(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	b, _ := io.ReadAll(r.Body)
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || json.Unmarshal(b, &body) != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", "Empty Payload. JSON content expected.")
		return
	}
	f.mu.Lock()
	f.posts = append(f.posts, body)
	f.mu.Unlock()
	str := func(k string) string { s, _ := body[k].(string); return s }
	for _, k := range []string{"changeType", "notificationUrl", "resource", "expirationDateTime"} {
		if str(k) == "" {
			graphError(w, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("Property '%s' is required.", k))
			return
		}
	}
	for k := range body {
		switch k {
		case "changeType", "notificationUrl", "lifecycleNotificationUrl", "resource", "expirationDateTime", "clientState", "latestSupportedTlsVersion", "includeResourceData", "encryptionCertificate", "encryptionCertificateId":
		default:
			graphError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("The property '%s' does not exist on type 'microsoft.graph.subscription'.", k))
			return
		}
	}
	if !validChangeType(str("changeType")) {
		graphError(w, http.StatusBadRequest, "InvalidRequest", "Invalid 'changeType' attribute: '"+str("changeType")+"'.")
		return
	}
	if len(str("clientState")) > 128 {
		graphError(w, http.StatusBadRequest, "InvalidRequest", "clientState must not exceed 128 characters.")
		return
	}
	if v := str("latestSupportedTlsVersion"); v != "" && v != "v1_0" && v != "v1_1" && v != "v1_2" && v != "v1_3" {
		graphError(w, http.StatusBadRequest, "InvalidRequest", "Invalid latestSupportedTlsVersion.")
		return
	}
	exp, msg := f.checkExpiry(body["expirationDateTime"])
	if msg != "" {
		graphError(w, http.StatusBadRequest, "InvalidRequest", msg)
		return
	}
	// Graph validates every notification URL before it creates the subscription.
	urls := []string{str("notificationUrl")}
	if l := str("lifecycleNotificationUrl"); l != "" {
		urls = append(urls, l)
	}
	for _, u := range urls {
		if err := f.validate(u); err != nil {
			graphError(w, http.StatusBadRequest, "InvalidRequest", "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request. ("+err.Error()+")")
			return
		}
	}
	f.mu.Lock()
	f.nextID++
	cs := str("clientState")
	s := &graphSub{
		ID:       fmt.Sprintf("7f105c7d-2dc5-4530-97cd-4e7a%08d", f.nextID),
		Resource: str("resource"), ApplicationID: f.appID, ChangeType: str("changeType"),
		NotificationURL: str("notificationUrl"), ExpirationDateTime: exp.UTC().Format("2006-01-02T15:04:05.0000000Z"),
		CreatorID: "8ee44408-0679-472c-bc2a-692812af3437", LatestSupportedTLSVersion: str("latestSupportedTlsVersion"),
	}
	if cs != "" {
		s.ClientState = &cs
	}
	if l := str("lifecycleNotificationUrl"); l != "" {
		s.LifecycleNotificationURL = &l
	}
	if s.LatestSupportedTLSVersion == "" {
		s.LatestSupportedTLSVersion = "v1_2"
	}
	f.subs[s.ID] = s
	lose := f.loseNext
	f.loseNext = false
	out := subJSON(s)
	f.mu.Unlock()
	if lose {
		// The subscription exists, but the answer never reaches the caller.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// validate is Graph's validation request: POST url?validationToken=<token> with an empty
// text/plain body; the endpoint must answer 200, text/plain, the decoded token, within 10 s.
func (f *fakeGraph) validate(notificationURL string) error {
	token := fmt.Sprintf("Validation: Testing client application reachability for subscription Request-Id: %d&x=1", time.Now().UnixNano())
	u, err := url.Parse(notificationURL)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("validationToken", token)
	u.RawQuery = q.Encode()
	if host, _, _ := net.SplitHostPort(u.Host); u.Scheme != "https" && host != "127.0.0.1" {
		return fmt.Errorf("notificationUrl must be https")
	}
	req, _ := http.NewRequest(http.MethodPost, u.String(), bytes.NewReader(nil))
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		return fmt.Errorf("answered Content-Type %q", resp.Header.Get("Content-Type"))
	}
	if string(got) != token {
		return fmt.Errorf("answered %q, not the token", got)
	}
	f.mu.Lock()
	f.validated = append(f.validated, validation{URL: notificationURL, Token: token})
	f.mu.Unlock()
	return nil
}

func (f *fakeGraph) update(w http.ResponseWriter, r *http.Request, id string) {
	var body map[string]any
	b, _ := io.ReadAll(r.Body)
	if json.Unmarshal(b, &body) != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", "Empty Payload. JSON content expected.")
		return
	}
	f.mu.Lock()
	f.patches = append(f.patches, body)
	s := f.subs[id]
	f.mu.Unlock()
	if s == nil {
		graphError(w, http.StatusNotFound, "ResourceNotFound", "The object was not found.")
		return
	}
	for k := range body {
		if k != "expirationDateTime" && k != "notificationUrl" {
			graphError(w, http.StatusBadRequest, "BadRequest", "Only expirationDateTime and notificationUrl can be updated.")
			return
		}
	}
	exp, msg := f.checkExpiry(body["expirationDateTime"])
	if msg != "" {
		graphError(w, http.StatusBadRequest, "InvalidRequest", msg)
		return
	}
	f.mu.Lock()
	s = f.subs[id]
	s.ExpirationDateTime = exp.UTC().Format("2006-01-02T15:04:05.0000000Z")
	out := subJSON(s)
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (f *fakeGraph) delete(w http.ResponseWriter, id string) {
	f.mu.Lock()
	_, ok := f.subs[id]
	delete(f.subs, id)
	f.mu.Unlock()
	if !ok {
		graphError(w, http.StatusNotFound, "ResourceNotFound", "The object was not found.")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// add stores a subscription directly (one made by another app or an older deployment).
func (f *fakeGraph) add(id, notificationURL string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs[id] = &graphSub{ID: id, Resource: "/users", ApplicationID: f.appID, ChangeType: "updated",
		NotificationURL: notificationURL, ExpirationDateTime: f.now().Add(time.Hour).UTC().Format(time.RFC3339),
		LatestSupportedTLSVersion: "v1_2"}
}

func (f *fakeGraph) all() []*graphSub {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sortedLocked()
}

func (f *fakeGraph) get(id string) *graphSub {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.subs[id]; ok {
		c := *s
		return &c
	}
	return nil
}

func (f *fakeGraph) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// count counts the calls starting with prefix ("POST /v1.0/subscriptions").
func (f *fakeGraph) count(prefix string) int {
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

func (f *fakeGraph) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// notification is one change notification for subscription s in Graph's format: a
// message in a user's mailbox, identified by messageID, with an etag per version.
func (f *fakeGraph) notification(s *graphSub, changeType, messageID, etag string) map[string]any {
	res := "Users/8ee44408-0679-472c-bc2a-692812af3437/Messages/" + messageID
	n := map[string]any{
		"subscriptionId":                 s.ID,
		"subscriptionExpirationDateTime": s.ExpirationDateTime,
		"changeType":                     changeType,
		"resource":                       res,
		"resourceData": map[string]any{
			"@odata.type": "#Microsoft.Graph.Message",
			"@odata.id":   res,
			"@odata.etag": `W/"` + etag + `"`,
			"id":          messageID,
		},
		"tenantId": f.tenantID,
	}
	if s.ClientState != nil {
		n["clientState"] = *s.ClientState
	}
	return n
}

// lifecycle is a lifecycle notification for s.
func (f *fakeGraph) lifecycle(s *graphSub, event string) map[string]any {
	n := map[string]any{
		"subscriptionId":                 s.ID,
		"subscriptionExpirationDateTime": s.ExpirationDateTime,
		"lifecycleEvent":                 event,
		"resource":                       s.Resource,
		"organizationId":                 f.tenantID,
	}
	if s.ClientState != nil {
		n["clientState"] = *s.ClientState
	}
	return n
}

// deliver POSTs a notification collection to url as Graph does and returns the status
// and body of the answer.
func deliver(t *testing.T, url string, notifications ...map[string]any) (int, string) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"value": notifications})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// httptestServer serves fn on 127.0.0.1 until the test ends and returns its URL.
func httptestServer(t *testing.T, fn http.HandlerFunc) string {
	s := httptest.NewServer(fn)
	t.Cleanup(s.Close)
	return s.URL
}

// recorded returns copies of the create and update bodies and of the validations made.
func (f *fakeGraph) recorded() (posts, patches []map[string]any, validated []validation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.posts...), append([]map[string]any(nil), f.patches...), append([]validation(nil), f.validated...)
}
