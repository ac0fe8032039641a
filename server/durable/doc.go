// Package durable creates files and directories so that they survive a crash or a power
// cut: a new directory entry is only on disk once its parent directory has been fsynced,
// and a file written in place can be found half-written. MkdirAll and SyncDir sync the
// directories that hold new entries; WriteFileExclusive writes a file completely (temp
// file, fsync, hard link) before its name appears, and never replaces an existing one.
package durable
