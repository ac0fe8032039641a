package main

import "syscall"

// sysProcAttr kills a subprocess when the harness dies (even by SIGKILL), so none is
// left running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// onTmpfs reports whether dir is on tmpfs, where fsync costs nothing.
func onTmpfs(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == 0x01021994 // TMPFS_MAGIC
}
