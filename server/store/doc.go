// Package store defines hookmap's storage interface and its records. Implementations live
// in sub-packages (sqlite is the embedded default); storetest holds the conformance suite
// every implementation must pass.
//
// The store never sees a secret in clear text: credentials, connector parameters,
// webhook secrets and subscription state arrive sealed by the caller and are stored as
// opaque bytes. (The one exception is the upgrade of a database written by a version that
// kept subscription state in clear: the implementation seals it in place, with a sealing
// function the caller gives it, and scrubs the clear copies from its files.)
package store
