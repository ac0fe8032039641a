// Package store defines hookmap's storage interface and its records. Implementations live
// in sub-packages (sqlite is the embedded default); storetest holds the conformance suite
// every implementation must pass.
//
// The store never sees a secret in clear text: credentials, connector parameters and
// webhook secrets arrive sealed by the caller and are stored as opaque bytes.
package store
