package fence

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SeatbeltParams are what a macOS fence's profile is generated from.
type SeatbeltParams struct {
	Port   int      // the one network destination allowed: TCP to localhost:Port (Tokfence's forwarder)
	Hidden []string // absolute paths the agent may neither read nor write (dirs and files; may not exist)
	Home   string   // the user's home, absolute (for ~/Library/Keychains etc.)
}

// SeatbeltProfile returns the SBPL text for sandbox-exec -p. It refuses
// (error) a port outside 1..65535, a relative or empty path, and any path
// with a NUL, newline or other control character.
//
// The agent keeps the user's files as usual (the profile starts from
// allow default); the rules after that take its network, the keychain,
// the Hidden paths and the unsandboxed helpers that would act for it.
// Seatbelt matches the path the kernel resolved, not the one the agent
// spelled, so a caller should pass Hidden and Home with symlinks resolved
// where they exist; the /tmp, /var and /etc links into /private and the
// data-volume firmlinks are covered here. Paths are emitted sorted and
// deduplicated, so equal parameters always give equal text.
func SeatbeltProfile(p SeatbeltParams) (string, error) {
	if p.Port < 1 || p.Port > 65535 {
		return "", fmt.Errorf("seatbelt profile: port %d is outside 1..65535", p.Port)
	}
	roots, err := seatbeltRoots(p.Home, p.Hidden)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(sbHeader)
	sbNetwork(&b, p.Port)
	sbFiles(&b, roots)
	sbMach(&b)
	b.WriteString(sbHelpers)
	return b.String(), nil
}

// sbHeader opens the profile. Seatbelt lets the last matching rule decide,
// so the broad allow comes first and every narrowing rule after it.
const sbHeader = `(version 1)
; Tokfence fence, generated. The last matching rule decides: everything is
; allowed first, then taken away below.
(allow default)
`

// sbNetwork leaves the agent one way out: TCP to Tokfence's forwarder on
// loopback. network* also covers binding, listening, UDP (so DNS to any
// server) and unix-domain sockets, whose connects would reach
// mDNSResponder (DNS again), ssh-agent, gpg-agent, Docker and the
// launchd-managed agents that listen on a socket path. Binding and
// listening on localhost are not given back: the agent could not connect
// to its own server (outbound is the one port only), while any process
// outside, a browser page included, could pull from it.
func sbNetwork(b *strings.Builder, port int) {
	b.WriteString("; Network: only TCP to Tokfence's forwarder on loopback.\n")
	b.WriteString("(deny network*)\n")
	target := sbString("localhost:" + strconv.Itoa(port))
	fmt.Fprintf(b, "(allow network-outbound (remote tcp %s))\n", target)
}

// sbFiles denies every file operation under each root, then the renaming
// or removal of each directory above a root: Seatbelt matches paths, not
// inodes, so moving an ancestor would carry a denied tree to a name no rule
// covers. file* rather than file-read* file-write* also takes hard links,
// clones and metadata, which would otherwise copy or probe a denied file.
func sbFiles(b *strings.Builder, roots []string) {
	b.WriteString("; Keychain databases and hidden paths: no access at all.\n")
	for _, r := range roots {
		fmt.Fprintf(b, "(deny file* (subpath %s))\n", sbString(r))
	}
	b.WriteString("; No moving a denied tree out from under its rule.\n")
	for _, a := range sbAncestors(roots) {
		fmt.Fprintf(b, "(deny file-write-unlink (literal %s))\n", sbString(a))
	}
}

// machFilter is one mach-lookup filter: a service name, or a name prefix
// that also covers a daemon's sibling endpoints.
type machFilter struct{ kind, name string }

// sbSecurityServices are the daemons that read, unlock or sync the keychain
// for a client. They run outside the sandbox and open the databases
// themselves, so the file rules alone would leave every item one
// mach-lookup away. trustd and ocspd hold no secret, but they fetch URLs
// named in a certificate the client hands them, a way out; nothing in the
// fence needs certificate checks, its one destination being plain HTTP on
// loopback.
var sbSecurityServices = []machFilter{
	{"global-name", "com.apple.SecurityServer"},   // securityd: file keychains (SecKeychain*, security(1))
	{"global-name-prefix", "com.apple.securityd"}, // securityd's XPC endpoints
	{"global-name", "com.apple.secd"},             // data-protection and iCloud keychain (SecItem*)
	{"global-name-prefix", "com.apple.security."}, // SecurityAgent, authhost, keychaind, keychain sync proxies
	{"global-name", "com.apple.authd"},            // authorization rights, which gate keychain unlock and prompts
	{"global-name-prefix", "com.apple.ctkd."},     // CryptoTokenKit: smart-card and token keychain items
	{"global-name-prefix", "com.apple.trustd"},    // trust evaluation, and the agent endpoint
	{"global-name", "com.apple.ocspd"},            // revocation fetches
}

// sbLaunchServices start or script applications for a client, outside the
// sandbox. They back the operation rules of sbHelpers: each is one route
// to the same escape.
var sbLaunchServices = []machFilter{
	{"global-name", "com.apple.coreservices.launchservicesd"}, // open(1), NSWorkspace
	{"global-name", "com.apple.coreservices.appleevents"},     // Apple events to other apps
}

// sbMach denies the lookups of sbSecurityServices and sbLaunchServices.
func sbMach(b *strings.Builder) {
	b.WriteString("; Keychain, authorization and trust daemons answer over Mach.\n")
	for _, f := range sbSecurityServices {
		fmt.Fprintf(b, "(deny mach-lookup (%s %s))\n", f.kind, sbString(f.name))
	}
	b.WriteString("; So do the services that launch and script other apps.\n")
	for _, f := range sbLaunchServices {
		fmt.Fprintf(b, "(deny mach-lookup (%s %s))\n", f.kind, sbString(f.name))
	}
}

// sbHelpers closes the ways to have an unsandboxed process do the work:
// LaunchServices (open -a Terminal), Apple events (tell Terminal to do
// script) and launchd jobs (launchctl submit). Any of them would run a
// command with none of the rules above.
const sbHelpers = `; No handing work to a process outside the sandbox.
(deny lsopen)
(deny appleevent-send)
(deny job-creation)
`

// seatbeltRoots returns the sorted, deduplicated subtrees to deny: the
// keychains (the home's and the system's) and the hidden paths, each in
// every spelling Seatbelt may see.
func seatbeltRoots(home string, hidden []string) ([]string, error) {
	home, err := sbCleanPath("home", home)
	if err != nil {
		return nil, err
	}
	roots := append([]string{path.Join(home, "Library/Keychains")}, sbSystemKeychains...)
	for _, h := range hidden {
		c, err := sbCleanPath("hidden", h)
		if err != nil {
			return nil, err
		}
		roots = append(roots, c)
	}
	var forms []string
	for _, r := range roots {
		forms = append(forms, sbForms(r)...)
	}
	return sbSorted(forms), nil
}

// sbSystemKeychains are the keychain files outside the home. Not here:
// /System/Library/Keychains, which holds only Apple's root certificates,
// public and read directly by some TLS stacks.
var sbSystemKeychains = []string{
	"/Library/Keychains",         // System.keychain and the other local-domain keychains
	"/Network/Library/Keychains", // network-domain keychains
	"/private/var/db/SystemKey",  // the key that unlocks System.keychain
}

// sbMaxPath is the longest path macOS can name (PATH_MAX less its NUL).
// The kernel hands Seatbelt no longer path, so a rule for one could never
// match anything.
const sbMaxPath = 1023

// sbCleanPath vets one path and cleans it lexically. A control character
// could end or bend the profile's text, invalid UTF-8 names no APFS file,
// and a relative path has no meaning to Seatbelt.
func sbCleanPath(what, p string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("seatbelt profile: %s path is empty", what)
	case !utf8.ValidString(p):
		return "", fmt.Errorf("seatbelt profile: %s path %q is not valid UTF-8", what, p)
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return "", fmt.Errorf("seatbelt profile: %s path %q has a control character", what, p)
	case !path.IsAbs(p):
		return "", fmt.Errorf("seatbelt profile: %s path %q is not absolute", what, p)
	case len(p) > sbMaxPath:
		return "", fmt.Errorf("seatbelt profile: %s path is %d bytes, longer than macOS can name (%d)", what, len(p), sbMaxPath)
	}
	return path.Clean(p), nil
}

// sbDataVolume is where macOS mounts the data volume. /Users, /Library,
// /private and the rest of it are reachable under this prefix as well, and
// Seatbelt matches the path as spelled there.
const sbDataVolume = "/System/Volumes/Data"

// sbPrivateLinks are the top-level symlinks into /private. The kernel
// resolves them before Seatbelt matches, so only the /private form of a
// path under one can ever match.
var sbPrivateLinks = []string{"/etc", "/tmp", "/var"}

// sbForms returns p as given, its /private form and its data-volume form.
// A path given in the data-volume form is folded back first, so either
// spelling yields the same set.
func sbForms(p string) []string {
	if rest, ok := strings.CutPrefix(p, sbDataVolume); ok && strings.HasPrefix(rest, "/") {
		p = rest
	}
	canon := p
	for _, l := range sbPrivateLinks {
		if sbWithin(p, l) {
			canon = "/private" + p
			break
		}
	}
	forms := []string{p, canon}
	if canon != "/" && !sbWithin(canon, "/System/Volumes") && !sbWithin(canon, "/Volumes") {
		forms = append(forms, sbDataVolume+canon)
	}
	return forms
}

// sbAncestors returns every directory above a root, "/" excepted (it cannot
// be renamed), sorted and deduplicated.
func sbAncestors(roots []string) []string {
	var dirs []string
	for _, r := range roots {
		for d := path.Dir(r); d != "/"; d = path.Dir(d) {
			dirs = append(dirs, d)
		}
	}
	return sbSorted(dirs)
}

// sbWithin reports whether p is dir or lies below it.
func sbWithin(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// sbSorted sorts s and drops repeats, in place.
func sbSorted(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// sbString quotes s as an SBPL string literal. The profile reader is a
// TinyScheme one: inside quotes a backslash escapes the next character, so
// only the backslash and the double quote need one. sbCleanPath has
// already refused the control characters that other escapes would stand
// for.
func sbString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}
