package twilio_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeTwilio is the part of Twilio's REST API a phone number's SMS URL lives in
// (IncomingPhoneNumbers: fetch, list with paging and the PhoneNumber filter, update with
// form-encoded parameters), with HTTP basic auth (account SID and auth token) and
// Twilio's error bodies. It sends incoming messages the way Twilio does: a form-encoded
// POST to the number's SmsUrl, signed with the auth token (X-Twilio-Signature).
type fakeTwilio struct {
	t          *testing.T
	srv        *httptest.Server
	accountSid string
	authToken  string
	pageSize   int

	mu      sync.Mutex
	numbers []*fakeNumber
	calls   []string
	updates []url.Values
}

type fakeNumber struct {
	Sid, PhoneNumber, SmsURL, SmsMethod string
}

func newFakeTwilio(t *testing.T) *fakeTwilio {
	f := &fakeTwilio{t: t, accountSid: "AC6f2a4c8e0b1d3f5a7c9e1b3d5f7a9c1e", authToken: "9f8e7d6c5b4a39281706f5e4d3c2b1a0", pageSize: 50}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTwilio) addNumber(sid, phone, smsURL string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.numbers = append(f.numbers, &fakeNumber{Sid: sid, PhoneNumber: phone, SmsURL: smsURL, SmsMethod: "POST"})
}

func (f *fakeTwilio) number(sid string) fakeNumber {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.numbers {
		if n.Sid == sid {
			return *n
		}
	}
	f.t.Fatalf("no number %s", sid)
	return fakeNumber{}
}

func twilioError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"code": code, "message": msg, "more_info": "https://www.twilio.com/docs/errors/" + strconv.Itoa(code), "status": status})
	_, _ = w.Write(b)
}

func (f *fakeTwilio) json(n *fakeNumber) map[string]any {
	return map[string]any{
		"sid": n.Sid, "account_sid": f.accountSid, "friendly_name": n.PhoneNumber, "phone_number": n.PhoneNumber,
		"sms_url": n.SmsURL, "sms_method": n.SmsMethod, "sms_fallback_url": "", "voice_url": "https://demo.twilio.com/welcome/voice/",
		"status": "in-use", "api_version": "2010-04-01",
		"uri": "/2010-04-01/Accounts/" + f.accountSid + "/IncomingPhoneNumbers/" + n.Sid + ".json",
	}
}

var numberPath = regexp.MustCompile(`^/2010-04-01/Accounts/([^/]+)/IncomingPhoneNumbers/([^/]+)\.json$`)

func (f *fakeTwilio) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	if user, pass, ok := r.BasicAuth(); !ok || user != f.accountSid || pass != f.authToken {
		twilioError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	list := "/2010-04-01/Accounts/" + f.accountSid + "/IncomingPhoneNumbers.json"
	if r.Method == http.MethodGet && r.URL.Path == list {
		f.list(w, r, list)
		return
	}
	m := numberPath.FindStringSubmatch(r.URL.Path)
	if m == nil || m[1] != f.accountSid {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.numbers, func(n *fakeNumber) bool { return n.Sid == m[2] })
	if i < 0 {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	n := f.numbers[i]
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			twilioError(w, http.StatusBadRequest, 20001, "Unsupported content type "+ct)
			return
		}
		if err := r.ParseForm(); err != nil {
			twilioError(w, http.StatusBadRequest, 20001, err.Error())
			return
		}
		f.updates = append(f.updates, r.PostForm)
		if v, ok := r.PostForm["SmsMethod"]; ok {
			if v[0] != "GET" && v[0] != "POST" {
				twilioError(w, http.StatusBadRequest, 21200, "SmsMethod is not valid")
				return
			}
			n.SmsMethod = v[0]
		}
		if v, ok := r.PostForm["SmsUrl"]; ok {
			n.SmsURL = v[0]
		}
	default:
		twilioError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed")
		return
	}
	b, _ := json.Marshal(f.json(n))
	_, _ = w.Write(b)
}

// list pages the account's numbers; PageToken is the sid of the last number of the page
// before, as Twilio's PA… tokens are opaque to clients.
func (f *fakeTwilio) list(w http.ResponseWriter, r *http.Request, path string) {
	q := r.URL.Query()
	size := f.pageSize
	if s, err := strconv.Atoi(q.Get("PageSize")); err == nil && s > 0 {
		size = min(s, f.pageSize)
	}
	f.mu.Lock()
	var all []*fakeNumber
	for _, n := range f.numbers {
		if p := q.Get("PhoneNumber"); p == "" || p == n.PhoneNumber {
			all = append(all, n)
		}
	}
	start := 0
	if tok := q.Get("PageToken"); tok != "" {
		start = slices.IndexFunc(all, func(n *fakeNumber) bool { return "PA"+n.Sid == tok }) + 1
		if start == 0 {
			f.mu.Unlock()
			twilioError(w, http.StatusBadRequest, 20005, "Invalid PageToken")
			return
		}
	}
	page := []any{}
	for i := start; i < len(all) && i < start+size; i++ {
		page = append(page, f.json(all[i]))
	}
	var next any
	if start+size < len(all) {
		pg, _ := strconv.Atoi(q.Get("Page"))
		nq := url.Values{"PageSize": {strconv.Itoa(size)}, "Page": {strconv.Itoa(pg + 1)}, "PageToken": {"PA" + all[start+size-1].Sid}}
		if p := q.Get("PhoneNumber"); p != "" {
			nq.Set("PhoneNumber", p)
		}
		next = path + "?" + nq.Encode()
	}
	f.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"incoming_phone_numbers": page, "next_page_uri": next, "page_size": size, "uri": path})
	_, _ = w.Write(b)
}

func (f *fakeTwilio) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// signature is X-Twilio-Signature of params POSTed to u, computed as Twilio's docs spell
// it out: the URL, then each parameter's name and value, sorted by name.
func signature(token, u string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := u
	for _, k := range keys {
		for _, v := range params[k] {
			s += k + v
		}
	}
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// send delivers an incoming message to the number's SMS URL as Twilio does, signed with
// token (the account's auth token when empty).
func (f *fakeTwilio) send(sid string, params url.Values, token string) (int, http.Header, string) {
	f.t.Helper()
	n := f.number(sid)
	if token == "" {
		token = f.authToken
	}
	req, err := http.NewRequest(n.SmsMethod, n.SmsURL, strings.NewReader(params.Encode()))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set("I-Twilio-Idempotency-Token", fmt.Sprintf("%x", sha1.Sum([]byte(params.Encode()))))
	req.Header.Set("X-Twilio-Signature", signature(token, n.SmsURL, params))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// message is an incoming SMS as Twilio posts it.
func message(sid, from, to, body string) url.Values {
	return url.Values{
		"MessageSid": {sid}, "SmsSid": {sid}, "SmsMessageSid": {sid}, "AccountSid": {"AC6f2a4c8e0b1d3f5a7c9e1b3d5f7a9c1e"},
		"MessagingServiceSid": {"MG9752274e9e519418a7406176694466fa"}, "From": {from}, "To": {to}, "Body": {body},
		"NumMedia": {"0"}, "NumSegments": {"1"}, "SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"},
		"FromCountry": {"US"}, "FromState": {"CA"}, "FromCity": {"SAN FRANCISCO"}, "FromZip": {"94105"},
		"ToCountry": {"US"}, "ToState": {"CA"}, "ToCity": {"SAN FRANCISCO"}, "ToZip": {"94109"},
	}
}
