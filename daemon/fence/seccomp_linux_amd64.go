package fence

import "golang.org/x/sys/unix"

const (
	nativeArch  = unix.AUDIT_ARCH_X86_64
	nativeIoctl = 16 // __NR_ioctl, x86_64
	compatArch  = unix.AUDIT_ARCH_I386
	compatIoctl = 54 // __NR_ioctl, i386
)
