package value

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeKeepsIntegers(t *testing.T) {
	v, err := DecodeString(`{"id":1234567,"big":9007199254740993,"f":1.5,"e":1e3,"neg":-7,"huge":1e400000}`)
	require.Error(t, err)
	v, err = DecodeString(`{"id":1234567,"big":9007199254740993,"f":1.5,"e":1e3,"neg":-7,"over":18446744073709551616}`)
	require.NoError(t, err)
	m := v.(map[string]any)
	require.Equal(t, int64(1234567), m["id"])
	require.Equal(t, int64(9007199254740993), m["big"])
	require.Equal(t, 1.5, m["f"])
	require.Equal(t, 1000.0, m["e"])
	require.Equal(t, int64(-7), m["neg"])
	require.Equal(t, 1.8446744073709552e19, m["over"])
}

func TestDecodeRejectsTrailingAndDeep(t *testing.T) {
	_, err := DecodeString(`{} {}`)
	require.ErrorIs(t, err, ErrTrailingData)
	deep := make([]byte, 0, 600)
	for range 300 {
		deep = append(deep, '[')
	}
	for range 300 {
		deep = append(deep, ']')
	}
	_, err = Decode(deep)
	require.ErrorIs(t, err, ErrTooDeep)
	_, err = DecodeStored(deep)
	require.NoError(t, err, "what hookmap stored reads back whatever limit it was written under")
	_, err = DecodeStored([]byte(strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000)))
	require.ErrorIs(t, err, ErrTooDeep, "encoding/json's own limit")
}

func TestEncodeRoundTrip(t *testing.T) {
	in := `{"a":[1,2.5,"x",null,true],"b":{"c":1234567},"d":1000000}`
	v, err := DecodeString(in)
	require.NoError(t, err)
	out, err := Encode(v)
	require.NoError(t, err)
	require.JSONEq(t, in, string(out))
	str, err := EncodeString(v)
	require.NoError(t, err)
	require.Equal(t, string(out), str)
	_, err = EncodeString(math.NaN())
	require.Error(t, err)
	b, err := Encode(map[string]any{"f": 1e6, "g": 0.1})
	require.NoError(t, err)
	require.Equal(t, `{"f":1000000,"g":0.1}`, string(b))
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte(`[1.5,"x",{"y":null}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(b)
		if err != nil {
			return
		}
		out, err := Encode(v)
		if err != nil {
			return
		}
		if _, err := Decode(out); err != nil {
			t.Fatalf("re-decode of %q: %v", out, err)
		}
	})
}

// decode decodes every document exactly as encoding/json did: the same value, or an error
// where it gave one.
func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `[1.5,"x",{"y":null}]`, `{"big":9007199254740993,"e":1e3,"neg":-0}`, `"\ud800"`, `"\ud83d\ude00"`,
		`"a\\u0041"`, "\"\xff\xfe\"", `{"a":1,"a":2}`, `{} {}`, ` `, `NaN`, `[1,]`, `{"k":"\u0000"}`, `1e400`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`, `"\/\b\f\n\r\t"`, `01`, `-`, `tru`,
		// the single-pass decoder's corners: strings across its 8-byte steps, escapes,
		// UTF-8, numbers, whitespace, nesting at the limits
		`"1234567"`, `"12345678"`, `"123456789"`, `"1234567\"x"`, "\"1234567\x01\"", "\"12345678\x1f90\"",
		`"caf\u00e9 café 日本"`, "\"abcdefg\xc3\xa9hij\"", "\"abcdefgh\xe9\"", `"\u00e9\u20AC\ud83d\ude00"`,
		`"\x"`, `"\u12"`, `"\u12g4"`, `"a\"`, `"abc`, `{"a" :1 , "b":[ 1 ,2 ] }`, " \t\r\n{}\n", `{"a":1,}`, `{,}`, `[,1]`,
		`{"a"}`, `{"a":}`, `{1:2}`, `-0.0`, `1E5`, `1.5e-3`, `1e+2`, `2.`, `.5`, `-01`, `1e`, `+1`, `9223372036854775807`,
		`9223372036854775808`, `-9223372036854775808`, `-9223372036854775809`, `[true,false,null]`, `nul`, `falsey`,
		strings.Repeat("[", 31) + strings.Repeat("]", 31), strings.Repeat("[", 32) + strings.Repeat("]", 32),
		strings.Repeat(`{"a":`, 33) + "1" + strings.Repeat("}", 33), strings.Repeat("[", 300) + strings.Repeat("]", 300),
		strings.Repeat("[", 301) + strings.Repeat("]", 301),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, depth := range []int{MaxDepth, unlimitedDepth} {
			got, err := decode(b, depth)
			want, wantErr := decodeStd(b, depth)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("decode(%q, %d): error %v, encoding/json: %v", b, depth, err, wantErr)
			}
			if err == nil {
				require.Equal(t, want, got, "decode(%q, %d)", b, depth)
			}
		}
	})
}

// encodeStd is Encode as it was written with encoding/json, the reference of
// FuzzEncodeMatchesEncodingJSON.
func encodeStd(buf *bytes.Buffer, v any) error {
	switch t := v.(type) {
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return fmt.Errorf("cannot encode %v as JSON", t)
		}
		if t == math.Trunc(t) && math.Abs(t) < 1e21 {
			buf.WriteString(strconv.FormatFloat(t, 'f', -1, 64))
			return nil
		}
		buf.WriteString(strconv.FormatFloat(t, 'g', -1, 64))
		return nil
	case map[string]any:
		buf.WriteByte('{')
		for i, k := range SortedKeys(t) {
			if i > 0 {
				buf.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			buf.Write(kb)
			buf.WriteByte(':')
			if err := encodeStd(buf, t[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	case []any:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := encodeStd(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	default:
		b, err := json.Marshal(t)
		if err != nil {
			return err
		}
		buf.Write(b)
		return nil
	}
}

// Encode writes every value exactly as encoding/json did: strings (as keys and values)
// with any bytes, numbers, and the document's own values.
func FuzzEncodeMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		"", "plain", `q"uote\back`, "<a href='x'>&amp;</a>", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "caf\u00e9 \u65e5\u672c",
		"\u2028\u2029", "\xff\xfe", "a\xc3", "\xed\xa0\x80", "\U0001F600", "12345678\"9", strings.Repeat("x<", 40),
	} {
		f.Add(s, 1.5, int64(-7))
	}
	f.Add("k", 1e21, int64(9007199254740993))
	f.Add("k", -0.0, int64(0))
	f.Add("k", 1e-7, int64(-9223372036854775808))
	f.Fuzz(func(t *testing.T, s string, fl float64, n int64) {
		vals := []any{
			s, fl, n, nil, true, false,
			map[string]any{s: s, "n": n, "f": fl, "l": []any{s, n, map[string]any{}}, "e": []any{}},
			[]any{map[string]any{s: []any{s}}, nil},
		}
		if v, err := DecodeString(s); err == nil {
			vals = append(vals, v) // a document, when s is one
		}
		for _, v := range vals {
			var want bytes.Buffer
			wantErr := encodeStd(&want, v)
			got, err := Encode(v)
			if wantErr != nil {
				require.Error(t, err)
				continue
			}
			require.NoError(t, err)
			require.Equal(t, want.String(), string(got))
			str, err := EncodeString(v)
			require.NoError(t, err)
			require.Equal(t, want.String(), str)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	v, err := Decode(benchBody)
	require.NoError(b, err)
	record := map[string]any{"id": "b2f6c1d0-8c1e-4f5e-9a51-3d2c1b0a9f8e", "action": "opened", "login": "octocat"}
	for name, v := range map[string]any{"body": v, "record": record} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encode(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
