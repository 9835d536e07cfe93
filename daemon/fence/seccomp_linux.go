package fence

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The fence's seccomp filter refuses what its namespaces do not cover:
//
//   - TIOCSTI and TIOCLINUX: a process that shares the user's terminal can
//     push bytes into its input queue, typed-ahead commands that the
//     user's shell runs, outside the fence, once the agent exits. Kernels
//     without dev.tty.legacy_tiocsti = 0 allow it to the terminal's owner.
//   - keyctl, add_key and request_key: the kernel's keyrings are not
//     namespaced, and the user's may hold credentials (Kerberos tickets,
//     an ecryptfs key), as Docker's default profile also judges.
//
// The filter is inherited by every process in the fence and cannot be
// lifted under no_new_privs.

// seccomp_data offsets (include/uapi/linux/seccomp.h), little-endian.
const (
	offNR      = 0
	offArch    = 4
	offArg1Low = 16 + 8 // args[1]'s low 32 bits: ioctl's cmd is an unsigned int
)

// abi is one system call ABI the filter knows: its audit arch and the
// numbers it refuses or inspects.
type abi struct {
	arch    uint32
	ioctl   uint32
	keyring []uint32 // add_key, request_key, keyctl
}

// prog assembles a classic BPF program with symbolic jump targets.
type prog struct {
	ins    []unix.SockFilter
	labels map[string]int
	fixups map[int][2]string // instruction → its true and false targets
}

func (p *prog) label(name string) { p.labels[name] = len(p.ins) }

func (p *prog) op(code uint16, k uint32) { p.ins = append(p.ins, unix.SockFilter{Code: code, K: k}) }

// jeq jumps to yes when the accumulator is k, else to no ("" = next).
func (p *prog) jump(code uint16, k uint32, yes, no string) {
	p.fixups[len(p.ins)] = [2]string{yes, no}
	p.op(code, k)
}

func (p *prog) assemble() []unix.SockFilter {
	for at, t := range p.fixups {
		for i, name := range t {
			if name == "" {
				continue
			}
			off := uint8(p.labels[name] - at - 1)
			if i == 0 {
				p.ins[at].Jt = off
			} else {
				p.ins[at].Jf = off
			}
		}
	}
	return p.ins
}

// fenceFilter returns the filter for this architecture's native and
// compat ABIs. Any other ABI's system calls are refused (ENOSYS), and so
// are x32's on amd64: an agent has no use for them and they would reach
// the same calls by other numbers.
func fenceFilter() []unix.SockFilter {
	const (
		ld    = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
		allow = unix.SECCOMP_RET_ALLOW
	)
	p := &prog{labels: map[string]int{}, fixups: map[int][2]string{}}
	p.op(ld, offArch)
	for i, a := range []abi{nativeABI, compatABI} {
		next := fmt.Sprintf("abi%d", i+1)
		p.jump(jeq, a.arch, "", next)
		p.op(ld, offNR)
		p.jump(jge, 0x40000000, "nosys", "") // x32's numbers on amd64; no real call elsewhere
		p.jump(jeq, a.ioctl, "ioctl", "")
		for _, nr := range a.keyring {
			p.jump(jeq, nr, "deny", "")
		}
		p.op(ret, allow)
		p.label(next)
	}
	p.op(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
	p.label("nosys")
	p.op(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
	p.label("ioctl")
	p.op(ld, offArg1Low)
	p.jump(jeq, unix.TIOCSTI, "deny", "")
	p.jump(jeq, unix.TIOCLINUX, "deny", "")
	p.op(ret, allow)
	p.label("deny")
	p.op(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM))
	return p.assemble()
}

// installFilter loads fenceFilter into every thread of this process
// (TSYNC), to be inherited by the agent. no_new_privs must be set.
func installFilter() error {
	f := fenceFilter()
	fp := unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&fp)))
	if errno != 0 {
		return fmt.Errorf("install the fence's seccomp filter: %w", errno)
	}
	return nil
}
