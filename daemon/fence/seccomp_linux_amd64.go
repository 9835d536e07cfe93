package fence

import "golang.org/x/sys/unix"

var (
	nativeABI = abi{arch: unix.AUDIT_ARCH_X86_64, ioctl: unix.SYS_IOCTL, keyring: []uint32{unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY, unix.SYS_KEYCTL}}
	compatABI = abi{arch: unix.AUDIT_ARCH_I386, ioctl: 54, keyring: []uint32{286, 287, 288}}
)
