package daemon

import (
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestProcessIsNotDumpable(t *testing.T) {
	startEnv(t, testConfig(t))
	v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil || v != 0 {
		t.Fatalf("PR_GET_DUMPABLE = %d, %v; want 0", v, err)
	}
	var rl syscall.Rlimit
	must(t, syscall.Getrlimit(syscall.RLIMIT_CORE, &rl))
	if rl.Cur != 0 {
		t.Fatalf("RLIMIT_CORE = %d, want 0", rl.Cur)
	}
}
