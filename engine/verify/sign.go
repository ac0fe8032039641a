package verify

// Sign is what an app does when it sends a request: `hookmap test` signs the deliveries of
// connector tests with it, and the tests of this package check Check against it. The
// server itself never signs with the incoming schemes (outgoing webhooks use
// SignStandardWebhooks).

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sign returns the headers that make r pass Check with the same c and secret
// at now. For standard-webhooks the message id is r's webhook-id header when
// set, else a random one; for hubspot, r.Method and r.URL are signed; for trello,
// r.URL; for twilio, r.URL and, when r's Content-Type is form-urlencoded, its form
// parameters (another body needs bodySHA256 in r.URL). token sends the secret itself.
func Sign(c Config, secret string, r Request, now time.Time) (http.Header, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if secret == "" {
		return nil, errors.New("no secret")
	}
	key := []byte(secret)
	out := http.Header{}
	secs := strconv.FormatInt(now.Unix(), 10)
	switch c.Scheme {
	case "github":
		out.Set(HeaderGitHub, "sha256="+hex.EncodeToString(mac(sha256.New, key, r.Body)))
	case "stripe":
		out.Set(HeaderStripe, "t="+secs+",v1="+hex.EncodeToString(mac(sha256.New, key, []byte(secs+"."), r.Body)))
	case "slack":
		out.Set(HeaderSlackTime, secs)
		out.Set(HeaderSlack, "v0="+hex.EncodeToString(mac(sha256.New, key, []byte("v0:"+secs+":"), r.Body)))
	case "shopify":
		out.Set(HeaderShopify, base64.StdEncoding.EncodeToString(mac(sha256.New, key, r.Body)))
	case "standard-webhooks":
		id := strings.TrimSpace(r.Header.Get(HeaderWebhookID))
		if id == "" {
			id = "msg_" + rand.Text()
		}
		sig, err := SignStandardWebhooks(secret, id, now, r.Body)
		if err != nil {
			return nil, err
		}
		out.Set(HeaderWebhookID, id)
		out.Set(HeaderWebhookTime, secs)
		out.Set(HeaderWebhookSig, sig)
	case "hubspot":
		ms := strconv.FormatInt(now.UnixMilli(), 10)
		out.Set(HeaderHubSpotTime, ms)
		out.Set(HeaderHubSpot, base64.StdEncoding.EncodeToString(mac(sha256.New, key, []byte(r.Method+r.URL), r.Body, []byte(ms))))
	case "token":
		out.Set(strings.TrimSpace(c.Header), c.Prefix+secret)
	case "zoom":
		out.Set(HeaderZoomTime, secs)
		out.Set(HeaderZoom, "v0="+hex.EncodeToString(mac(sha256.New, key, []byte("v0:"+secs+":"), r.Body)))
	case "trello":
		out.Set(HeaderTrello, base64.StdEncoding.EncodeToString(mac(sha1.New, key, r.Body, []byte(r.URL))))
	case "twilio":
		sum, err := signTwilio(key, r)
		if err != nil {
			return nil, err
		}
		out.Set(HeaderTwilio, base64.StdEncoding.EncodeToString(sum))
	default: // hmac
		newHash, _ := c.hashFunc()
		enc, _ := c.encoding()
		sum := mac(newHash, key, r.Body)
		var s string
		if enc == "hex" {
			s = hex.EncodeToString(sum)
		} else {
			s = base64.StdEncoding.EncodeToString(sum)
		}
		out.Set(strings.TrimSpace(c.Header), c.Prefix+s)
	}
	return out, nil
}
