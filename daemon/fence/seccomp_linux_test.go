package fence

import (
	"testing"

	"golang.org/x/sys/unix"
)

// runFilter interprets the classic BPF program f on one seccomp_data,
// enough of an interpreter for the instructions fenceFilter uses.
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

func TestFenceFilter(t *testing.T) {
	allow, eperm, enosys := uint32(unix.SECCOMP_RET_ALLOW), uint32(unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM)), uint32(unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
	tests := []struct {
		name           string
		arch, nr, arg1 uint32
		want           uint32
	}{
		{"TIOCSTI is refused", nativeABI.arch, nativeABI.ioctl, unix.TIOCSTI, eperm},
		{"TIOCLINUX is refused", nativeABI.arch, nativeABI.ioctl, unix.TIOCLINUX, eperm},
		{"TIOCSTI by the compat syscall is refused", compatABI.arch, compatABI.ioctl, unix.TIOCSTI, eperm},
		{"another ioctl passes", nativeABI.arch, nativeABI.ioctl, unix.TIOCGWINSZ, allow},
		{"another syscall passes", nativeABI.arch, 1, unix.TIOCSTI, allow},
		{"a compat syscall passes", compatABI.arch, 4, 0, allow},
		{"add_key is refused", nativeABI.arch, nativeABI.keyring[0], 0, eperm},
		{"request_key is refused", nativeABI.arch, nativeABI.keyring[1], 0, eperm},
		{"keyctl is refused", nativeABI.arch, nativeABI.keyring[2], 0, eperm},
		{"compat keyctl is refused", compatABI.arch, compatABI.keyring[2], 0, eperm},
		{"x32 (or any number with bit 30) is refused", nativeABI.arch, 0x40000000 | 514, unix.TIOCSTI, enosys},
		{"a foreign architecture is refused", 0x12345678, nativeABI.ioctl, 0, enosys},
	}
	f := fenceFilter()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runFilter(t, f, tt.arch, tt.nr, tt.arg1); got != tt.want {
				t.Fatalf("filter(arch %#x, nr %d, cmd %#x) = %#x, want %#x", tt.arch, tt.nr, tt.arg1, got, tt.want)
			}
		})
	}
}
