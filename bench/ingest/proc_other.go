//go:build !linux

package main

import "syscall"

// sysProcAttr: only Linux can tie a subprocess's life to the harness's.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// onTmpfs: only checked on Linux.
func onTmpfs(string) bool { return false }
