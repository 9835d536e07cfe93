package fence

import (
	"testing"

	"golang.org/x/sys/unix"
)

// runFilter interprets the classic BPF program f on one seccomp_data,
// enough of an interpreter for the instructions ttyFilter uses.
func runFilter(t *testing.T, f []unix.SockFilter, arch, nr, arg1 uint32) uint32 {
	var acc uint32
	for pc := 0; pc < len(f); pc++ {
		in := f[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			acc = map[uint32]uint32{offNR: nr, offArch: arch, offArg1Low: arg1}[in.K]
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			if acc == in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			if acc >= in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		default:
			t.Fatalf("instruction %d: unexpected code %#x", pc, in.Code)
		}
	}
	t.Fatal("the filter fell off its end")
	return 0
}

func TestTTYFilter(t *testing.T) {
	allow, eperm, enosys := uint32(unix.SECCOMP_RET_ALLOW), uint32(unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM)), uint32(unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
	tests := []struct {
		name           string
		arch, nr, arg1 uint32
		want           uint32
	}{
		{"TIOCSTI is refused", nativeArch, nativeIoctl, unix.TIOCSTI, eperm},
		{"TIOCLINUX is refused", nativeArch, nativeIoctl, unix.TIOCLINUX, eperm},
		{"TIOCSTI by the compat syscall is refused", compatArch, compatIoctl, unix.TIOCSTI, eperm},
		{"another ioctl passes", nativeArch, nativeIoctl, unix.TIOCGWINSZ, allow},
		{"another syscall passes", nativeArch, 1, unix.TIOCSTI, allow},
		{"a compat syscall passes", compatArch, 4, 0, allow},
		{"x32 (or any number with bit 30) is refused", nativeArch, 0x40000000 | 514, unix.TIOCSTI, enosys},
		{"a foreign architecture is refused", 0x12345678, nativeIoctl, 0, enosys},
	}
	f := ttyFilter()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runFilter(t, f, tt.arch, tt.nr, tt.arg1); got != tt.want {
				t.Fatalf("filter(arch %#x, nr %d, cmd %#x) = %#x, want %#x", tt.arch, tt.nr, tt.arg1, got, tt.want)
			}
		})
	}
}
