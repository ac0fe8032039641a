package celfn

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"github.com/google/uuid"

	"github.com/hookmap/hookmap/engine/jmes"
	"github.com/hookmap/hookmap/engine/value"
)

// NowVar is the name of the timestamp variable holding the run's start time.
const NowVar = "now"

// Library returns hookmap's functions as a cel.EnvOption.
func Library() cel.EnvOption { return cel.Lib(library{}) }

type library struct{}

func (library) LibraryName() string { return "hookmap" }

func (library) ProgramOptions() []cel.ProgramOption { return nil }

func (library) CompileOptions() []cel.EnvOption {
	str, byt, dyn := cel.StringType, cel.BytesType, cel.DynType
	return []cel.EnvOption{
		cel.Function("hmacSha256",
			cel.Overload("hmacSha256_string_string", []*cel.Type{str, str}, byt, cel.BinaryBinding(hmacSHA256)),
			cel.Overload("hmacSha256_bytes_bytes", []*cel.Type{byt, byt}, byt, cel.BinaryBinding(hmacSHA256)),
			cel.Overload("hmacSha256_string_bytes", []*cel.Type{str, byt}, byt, cel.BinaryBinding(hmacSHA256)),
			cel.Overload("hmacSha256_bytes_string", []*cel.Type{byt, str}, byt, cel.BinaryBinding(hmacSHA256)),
		),
		cel.Function("sha256",
			cel.Overload("sha256_string", []*cel.Type{str}, byt, cel.UnaryBinding(sha256Of)),
			cel.Overload("sha256_bytes", []*cel.Type{byt}, byt, cel.UnaryBinding(sha256Of)),
		),
		cel.Function("hex",
			cel.Overload("hex_bytes", []*cel.Type{byt}, str, cel.UnaryBinding(hexOf)),
			cel.Overload("hex_string", []*cel.Type{str}, str, cel.UnaryBinding(hexOf)),
		),
		cel.Function("secureEquals",
			cel.Overload("secureEquals_string_string", []*cel.Type{str, str}, cel.BoolType, cel.BinaryBinding(secureEquals)),
			cel.Overload("secureEquals_bytes_bytes", []*cel.Type{byt, byt}, cel.BoolType, cel.BinaryBinding(secureEquals)),
		),
		cel.Function("uuid",
			cel.Overload("uuid", nil, str, cel.FunctionBinding(func(...ref.Val) ref.Val {
				return types.String(uuid.NewString())
			})),
		),
		cel.Function("jmespath",
			cel.Overload("jmespath_dyn_string", []*cel.Type{dyn, str}, dyn, cel.BinaryBinding(jmespathSearch)),
		),
		cel.Function("now",
			cel.Overload("now", nil, cel.TimestampType, cel.FunctionBinding(func(...ref.Val) ref.Val {
				return types.Timestamp{Time: time.Now().UTC()}
			})),
		),
		cel.Function("parseJson",
			cel.Overload("parseJson_string", []*cel.Type{str}, dyn, cel.UnaryBinding(parseJSON)),
			cel.Overload("parseJson_bytes", []*cel.Type{byt}, dyn, cel.UnaryBinding(parseJSON)),
		),
		cel.Function("toJson",
			cel.Overload("toJson_dyn", []*cel.Type{dyn}, str, cel.UnaryBinding(toJSON)),
		),
		cel.Function("parseLinkHeader",
			cel.Overload("parseLinkHeader_string", []*cel.Type{str}, cel.MapType(str, str), cel.UnaryBinding(parseLinkHeader)),
		),
		cel.Function("fail",
			cel.Overload("fail_string", []*cel.Type{str}, dyn, cel.UnaryBinding(fail)),
		),
		cel.Function("bigIntsAsStrings",
			cel.Overload("bigIntsAsStrings_dyn", []*cel.Type{dyn}, dyn, cel.UnaryBinding(bigIntsAsStrings)),
		),
		costModel(),
	}
}

// fail makes the evaluation fail with the message: for apps that report errors in a 2xx
// body (Slack's {"ok": false, "error": "invalid_auth"}).
func fail(v ref.Val) ref.Val {
	msg, ok := v.(types.String)
	if !ok {
		return types.NoSuchOverloadErr()
	}
	return types.NewErr("%s", string(msg))
}

func rawBytes(v ref.Val) ([]byte, bool) {
	switch t := v.(type) {
	case types.String:
		return []byte(t), true
	case types.Bytes:
		return []byte(t), true
	}
	return nil, false
}

func hmacSHA256(key, msg ref.Val) ref.Val {
	k, ok1 := rawBytes(key)
	m, ok2 := rawBytes(msg)
	if !ok1 || !ok2 {
		return types.NoSuchOverloadErr()
	}
	h := hmac.New(sha256.New, k)
	h.Write(m)
	return types.Bytes(h.Sum(nil))
}

func sha256Of(v ref.Val) ref.Val {
	b, ok := rawBytes(v)
	if !ok {
		return types.NoSuchOverloadErr()
	}
	s := sha256.Sum256(b)
	return types.Bytes(s[:])
}

func hexOf(v ref.Val) ref.Val {
	b, ok := rawBytes(v)
	if !ok {
		return types.NoSuchOverloadErr()
	}
	return types.String(hex.EncodeToString(b))
}

func secureEquals(a, b ref.Val) ref.Val {
	x, ok1 := rawBytes(a)
	y, ok2 := rawBytes(b)
	if !ok1 || !ok2 {
		return types.NoSuchOverloadErr()
	}
	return types.Bool(subtle.ConstantTimeCompare(x, y) == 1)
}

func jmespathSearch(doc, expr ref.Val) ref.Val {
	src, ok := expr.(types.String)
	if !ok {
		return types.NoSuchOverloadErr()
	}
	e, err := jmes.Cached(string(src))
	if err != nil {
		return types.NewErr("jmespath(): %s", err.Error())
	}
	plain, err := ToPlain(doc)
	if err != nil {
		return types.NewErr("jmespath(): %s", err.Error())
	}
	if Weight(plain, MaxValueWeight+1) > MaxValueWeight {
		return tooLarge("jmespath")
	}
	res, err := e.SearchPlain(plain)
	if err != nil {
		return types.NewErr("jmespath(): %s", err.Error())
	}
	return types.DefaultTypeAdapter.NativeToValue(res)
}

func parseJSON(v ref.Val) ref.Val {
	b, ok := rawBytes(v)
	if !ok {
		return types.NoSuchOverloadErr()
	}
	if len(b) > MaxValueWeight {
		return tooLarge("parseJson")
	}
	res, err := value.Decode(b)
	if err != nil {
		return types.NewErr("parseJson(): %s", err.Error())
	}
	return types.DefaultTypeAdapter.NativeToValue(res)
}

func toJSON(v ref.Val) ref.Val {
	plain, err := ToPlain(v)
	if err != nil {
		return types.NewErr("toJson(): %s", err.Error())
	}
	if Weight(plain, MaxValueWeight+1) > MaxValueWeight {
		return tooLarge("toJson")
	}
	b, err := value.Encode(plain)
	if err != nil {
		return types.NewErr("toJson(): %s", err.Error())
	}
	return types.String(b)
}

// parseLinkHeader parses an RFC 8288 Link header (`<url>; rel="next", <url>; rel="last"`)
// into a map from each rel to its URL, the form GitHub and Shopify paginate with. A link
// with several rels ("next last") is listed under each; the first link of a rel wins.
func parseLinkHeader(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return types.NoSuchOverloadErr()
	}
	return types.DefaultTypeAdapter.NativeToValue(ParseLinkHeader(string(s)))
}

// ParseLinkHeader is parseLinkHeader for Go callers.
func ParseLinkHeader(h string) map[string]string {
	out := map[string]string{}
	for len(h) > 0 {
		start := strings.IndexByte(h, '<')
		if start < 0 {
			break
		}
		end := strings.IndexByte(h[start:], '>')
		if end < 0 {
			break
		}
		target := h[start+1 : start+end]
		rest := h[start+end+1:]
		// parameters run to the next comma that starts a new link
		next := strings.Index(rest, ",")
		for next >= 0 && !strings.HasPrefix(strings.TrimSpace(rest[next+1:]), "<") {
			n := strings.Index(rest[next+1:], ",")
			if n < 0 {
				next = -1
				break
			}
			next += n + 1
		}
		params := rest
		if next >= 0 {
			params, h = rest[:next], rest[next+1:]
		} else {
			h = ""
		}
		for _, p := range strings.Split(params, ";") {
			k, val, found := strings.Cut(strings.TrimSpace(p), "=")
			if !found || !strings.EqualFold(strings.TrimSpace(k), "rel") {
				continue
			}
			val = strings.Trim(strings.TrimSpace(val), `"`)
			for _, rel := range strings.Fields(val) {
				rel = strings.ToLower(rel)
				if _, dup := out[rel]; !dup {
					out[rel] = target
				}
			}
		}
	}
	return out
}

var (
	baseOnce sync.Once
	baseEnv  *cel.Env
	baseErr  error
)

// BaseEnv returns the base environment, built once.
func BaseEnv() (*cel.Env, error) {
	baseOnce.Do(func() {
		baseEnv, baseErr = NewEnv()
		if baseErr != nil {
			baseErr = fmt.Errorf("build the CEL environment: %w", baseErr)
		}
	})
	return baseEnv, baseErr
}

// NewEnv builds a base environment (prefer BaseEnv, which is shared).
func NewEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		ext.Strings(),
		ext.Encoders(),
		ext.Math(),
		ext.Lists(),
		ext.Sets(),
		ext.Bindings(),
		ext.TwoVarComprehensions(),
		Library(),
		cel.Variable(NowVar, cel.TimestampType),
	)
}
