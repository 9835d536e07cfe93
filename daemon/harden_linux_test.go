package daemon

import (
	"syscall"
	"testing"

	"github.com/tokfence/tokfence/daemon/proc"
)

func TestProcessIsNotDumpable(t *testing.T) {
	startEnv(t, testConfig(t))
	v, err := proc.Dumpable()
	if err != nil || v != 0 {
		t.Fatalf("PR_GET_DUMPABLE = %d, %v; want 0", v, err)
	}
	var rl syscall.Rlimit
	must(t, syscall.Getrlimit(syscall.RLIMIT_CORE, &rl))
	if rl.Cur != 0 {
		t.Fatalf("RLIMIT_CORE = %d, want 0", rl.Cur)
	}
}
