// Package pagetoken is the page size and page token scheme the store implementations
// share: a token is base64url("<kind>:<n>[:<n>…]"), the list it belongs to and the sort
// key of the last record of the page before. A token of another kind, or not one at all,
// is store.ErrInvalidPageToken.
package pagetoken
