package fence

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// sysctl reads one value under /proc/sys; ok is false when the knob does
// not exist on this kernel.
func sysctl(name string) (string, bool) {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// diagnoseClone turns the kernel's refusal to create the namespaces into
// the cause and the fix.
func diagnoseClone(err error) error {
	if e := knownRestriction(); e != nil {
		return e
	}
	switch {
	case errors.Is(err, unix.ENOSPC):
		return &Error{Cause: "the kernel refused a new user namespace: the per-user limit (user.max_user_namespaces) is reached or 0",
			Fix: "raise it with `sudo sysctl -w user.max_user_namespaces=15000`, " + hintNoFence}
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		return &Error{Cause: fmt.Sprintf("this kernel lacks a namespace the fence needs (user, mount, network, PID, IPC or UTS): %v", err),
			Fix: "use a Linux kernel built with CONFIG_USER_NS, CONFIG_NET_NS and CONFIG_PID_NS (every distribution kernel since 4.x), " + hintNoFence}
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return &Error{Cause: fmt.Sprintf("the kernel refused to create the fence's namespaces (%v); a security module (AppArmor, SELinux) or a seccomp filter of the environment may forbid user namespaces", err),
			Fix: "allow unprivileged user namespaces for tokfence (on Ubuntu: an AppArmor profile granting `userns`, see the README), " + hintNoFence}
	}
	return &Error{Cause: fmt.Sprintf("start the fence's init: %v", err), Fix: hintNoFence}
}

// knownRestriction reports a sysctl that is known to forbid unprivileged
// user namespaces, or nil. Root is not bound by them.
func knownRestriction() *Error {
	if v, ok := sysctl("user.max_user_namespaces"); ok && v == "0" {
		return &Error{Cause: "user namespaces are disabled on this machine (user.max_user_namespaces = 0)",
			Fix: "enable them with `sudo sysctl -w user.max_user_namespaces=15000`, " + hintNoFence}
	}
	if os.Getuid() == 0 {
		return nil
	}
	if v, ok := sysctl("kernel.unprivileged_userns_clone"); ok && v == "0" {
		return &Error{Cause: "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)",
			Fix: "enable them with `sudo sysctl -w kernel.unprivileged_userns_clone=1`, " + hintNoFence}
	}
	if v, ok := sysctl("kernel.apparmor_restrict_unprivileged_userns"); ok && v == "1" {
		return &Error{Cause: "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1), so the fence's namespace would hold no capability",
			Fix: "install an AppArmor profile that grants tokfence `userns` (see the README), or `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, " + hintNoFence}
	}
	return nil
}

// diagnoseSetup explains a step of building the fence that failed inside
// the new namespaces; EPERM there usually means a security module left
// the namespace without its capabilities.
func diagnoseSetup(step string, err error) *report {
	r := &report{Error: fmt.Sprintf("%s: %v", step, err), Hint: hintNoFence}
	if e := knownRestriction(); e != nil {
		r.Error, r.Hint = e.Cause+" ("+r.Error+")", e.Fix
	} else if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		r.Hint = "a security module (AppArmor, SELinux) or the container this runs in may deny mounts in user namespaces; allow them for tokfence (see the README), " + hintNoFence
	}
	return r
}
