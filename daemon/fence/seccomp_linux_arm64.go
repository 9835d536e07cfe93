package fence

import "golang.org/x/sys/unix"

const (
	nativeArch  = unix.AUDIT_ARCH_AARCH64
	nativeIoctl = 29 // __NR_ioctl, arm64
	compatArch  = unix.AUDIT_ARCH_ARM
	compatIoctl = 54 // __NR_ioctl, arm (EABI)
)
