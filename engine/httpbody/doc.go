// Package httpbody turns a received webhook request into the variables a handle mapping
// sees: `data` parsed by Content-Type, `headers` with lower-case names, `query`. The
// rest-api-mapping client uses its header, query and media-type helpers for responses.
//
// Content types:
//   - JSON (application/json, any */*+json, text/json): parsed with integers kept as int64;
//     malformed JSON is ErrMalformedJSON.
//   - application/x-www-form-urlencoded: an object; a field given once is a string, a field
//     given several times a list of strings. A field holding JSON (Slack's payload=) stays
//     a string: parse it in the mapping with parseJson().
//   - multipart/form-data: an object of fields; a file part becomes
//     {filename, contentType, size, content (base64)}.
//   - text/*: the body as a string (invalid UTF-8 replaced by U+FFFD; rawBody keeps the bytes).
//   - anything else or no Content-Type: the body as a string when it is valid UTF-8, else
//     base64.
//
// An empty body is null whatever the content type.
package httpbody
