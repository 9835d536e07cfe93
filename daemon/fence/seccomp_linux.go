package fence

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A process that shares the user's terminal can push bytes into its input
// queue with TIOCSTI: typed-ahead commands that the user's shell reads
// and runs, outside the fence, once the agent exits. (TIOCLINUX can paste
// the console's selection the same way.) Kernels without
// dev.tty.legacy_tiocsti = 0 allow it to the terminal's owner, so the
// fence refuses both ioctls with a seccomp filter, inherited by every
// process in it and impossible to lift under no_new_privs.

// seccomp_data offsets (include/uapi/linux/seccomp.h), little-endian.
const (
	offNR      = 0
	offArch    = 4
	offArg1Low = 16 + 8 // args[1]'s low 32 bits: ioctl's cmd is an unsigned int
)

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func jeq(k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: jt, Jf: jf, K: k}
}

// ttyFilter returns the filter for the native and compat ioctl numbers of
// this architecture. Other architectures' syscalls are refused (ENOSYS),
// and so are x32's on amd64: an agent has no use for them and they would
// otherwise reach ioctl by another number.
func ttyFilter() []unix.SockFilter {
	const (
		ld      = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		ret     = unix.BPF_RET | unix.BPF_K
		allow   = unix.SECCOMP_RET_ALLOW
		deny    = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		noSys   = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
		x32Bit  = 0x40000000
		jgeCode = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	)
	return []unix.SockFilter{
		/* 0 */ stmt(ld, offArch),
		/* 1 */ jeq(nativeArch, 0, 4), // else → 6
		/* 2 */ stmt(ld, offNR),
		/* 3 */ {Code: jgeCode, Jt: 10, K: x32Bit}, // x32 (amd64) → 14
		/* 4 */ jeq(nativeIoctl, 5, 0), // → 10
		/* 5 */ stmt(ret, allow),
		/* 6 */ jeq(compatArch, 0, 7), // else → 14
		/* 7 */ stmt(ld, offNR),
		/* 8 */ jeq(compatIoctl, 1, 0), // → 10
		/* 9 */ stmt(ret, allow),
		/* 10 */ stmt(ld, offArg1Low),
		/* 11 */ jeq(unix.TIOCSTI, 3, 0), // → 15
		/* 12 */ jeq(unix.TIOCLINUX, 2, 0), // → 15
		/* 13 */ stmt(ret, allow),
		/* 14 */ stmt(ret, noSys),
		/* 15 */ stmt(ret, deny),
	}
}

// installTTYFilter loads ttyFilter into every thread of this process
// (TSYNC), to be inherited by the agent. no_new_privs must be set.
func installTTYFilter() error {
	f := ttyFilter()
	prog := unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return fmt.Errorf("install the terminal-injection filter (seccomp): %w", errno)
	}
	return nil
}
