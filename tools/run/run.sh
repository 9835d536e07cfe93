#!/usr/bin/env bash
# run.sh is what `make run` runs: `tokfence daemon` in the foreground, on
# a real Secret Service, so the OS-keychain code path is the one used.
#
#   tools/run/run.sh BIN [DAEMON FLAGS...]
#   KEYRING=auto|private|throwaway   (make run KEYRING=...; default auto)
#
# auto       the Secret Service on your session bus if there is one (a
#            desktop), else private.
# private    a gnome-keyring of its own on a D-Bus of its own, kept in
#            STATE/keyring (STATE is the daemon's state directory,
#            $TOKFENCE_STATE_DIR or $XDG_STATE_HOME/tokfence), 0700, and
#            reused by the next run: the keys you set survive. Its login
#            keyring's password is in STATE/keyring/password (0600), so the
#            files' permissions are what protect it, as for the rest of the
#            state; the fence hides the whole state directory from agents.
#            Another shell reaches it after `. STATE/keyring/env`.
# throwaway  the same, but keyring, bus and a state directory of its own
#            live in a fresh directory under STATE that is removed when the
#            daemon stops: nothing is left behind.
#
# Nothing goes to /tmp. The daemon is stopped with Ctrl-C (or SIGTERM to
# this script); the bus and the keyring stop with it.
set -euo pipefail

bin=${1:?usage: run.sh BIN [DAEMON FLAGS...]}
shift
keyring=${KEYRING:-auto}
state=${TOKFENCE_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/tokfence}

say() { echo "make run: $*" >&2; }
die() {
	say "error: $1"
	if [[ -n ${2:-} ]]; then say "hint: $2"; fi
	exit 1
}

case $keyring in
auto | private | throwaway) ;;
*) die "KEYRING=$keyring" "want KEYRING=auto, private or throwaway" ;;
esac

# has_secrets reports whether the bus at address $1 has a Secret Service.
has_secrets() {
	DBUS_SESSION_BUS_ADDRESS=$1 dbus-send --session --print-reply --dest=org.freedesktop.DBus \
		/org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true
}

if [[ $keyring == auto && -n ${DBUS_SESSION_BUS_ADDRESS:-} ]] && has_secrets "$DBUS_SESSION_BUS_ADDRESS"; then
	say "using the Secret Service on your session bus"
	exec "$bin" daemon "$@"
fi

# private_dir makes $1 (0700) if missing and refuses it unless it is a real
# directory of ours that no one else can read, as the daemon does its own.
private_dir() {
	[[ -e $1 || -L $1 ]] || mkdir -m 0700 "$1"
	[[ -d $1 && ! -L $1 ]] || die "$1 is not a directory" "move it aside"
	local owner mode
	read -r owner mode < <(stat -c '%u %a' "$1")
	[[ $owner == "$(id -u)" ]] || die "$1 is owned by uid $owner, not $(id -u)" "move it aside"
	[[ $mode =~ ^[0-7]?[0-7]00$ ]] || die "$1 has mode $mode; the keyring must not be group- or world-readable" "chmod 700 $1"
}

dir= owned= pids=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [[ -n ${daemon_pid:-} ]] && kill -TERM "$daemon_pid" 2>/dev/null; then wait "$daemon_pid" || true; fi
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; done
	if [[ -z $owned ]]; then
		: # nothing of ours to remove yet
	elif [[ $keyring == throwaway ]]; then
		rm -rf "$dir"
	else
		rm -rf "$dir/bus" "$dir/env" "$dir/run"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

mkdir -p "$(dirname "$state")"
private_dir "$state"
if [[ $keyring == throwaway ]]; then
	dir=$(mktemp -d "$state/keyring-throwaway.XXXXXX")
	owned=1
	export TOKFENCE_STATE_DIR=$dir/state
	mkdir -m 0700 "$TOKFENCE_STATE_DIR"
else
	dir=$state/keyring
	private_dir "$dir"
fi
bus=unix:path=$dir/bus
if [[ -S $dir/bus ]]; then
	has_secrets "$bus" && die "another make run is serving the keyring in $dir" "stop it first (Ctrl-C in its terminal)"
	rm -f "$dir/bus" # left by a run that was killed
fi
owned=1


# The bus and the keyring get the keyring directory as their data and
# runtime directories (a bus-activated keyring would too), and sessions of
# their own, so that Ctrl-C reaches the daemon first and they stop after it.
mkdir -p -m 0700 "$dir/run"
kenv=(env XDG_DATA_HOME="$dir" XDG_RUNTIME_DIR="$dir/run" DBUS_SESSION_BUS_ADDRESS="$bus")
"${kenv[@]}" setsid dbus-daemon --session --nofork --address="$bus" </dev/null >/dev/null 2>"$dir/run/dbus.log" &
pids+=($!)
for _ in $(seq 100); do
	[[ -S $dir/bus ]] && break
	sleep 0.05
done
[[ -S $dir/bus ]] || die "dbus-daemon did not start: $(cat "$dir/run/dbus.log")" "make deps installs it"

umask 077
if [[ ! -f $dir/password ]]; then
	[[ -e $dir/keyrings/login.keyring ]] &&
		die "$dir/keyrings/login.keyring exists but its password file does not" "move $dir aside to start a new keyring, or KEYRING=throwaway"
	head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/password"
fi
out=$("${kenv[@]}" setsid gnome-keyring-daemon --unlock --components=secrets --daemonize <"$dir/password") ||
	die "gnome-keyring-daemon could not unlock $dir/keyrings/login.keyring" "move $dir aside to start a new keyring"
kpid=$(sed -n 's/^GNOME_KEYRING_PID=//p' <<<"$out")
if [[ -n $kpid ]]; then pids+=("$kpid"); fi
for _ in $(seq 200); do
	has_secrets "$bus" && break
	sleep 0.05
done
has_secrets "$bus" || die "the private keyring did not appear on its bus" "make deps installs gnome-keyring"
locked=$(DBUS_SESSION_BUS_ADDRESS=$bus dbus-send --session --print-reply --dest=org.freedesktop.secrets \
	/org/freedesktop/secrets/collection/login org.freedesktop.DBus.Properties.Get \
	string:org.freedesktop.Secret.Collection string:Locked 2>&1 || true)
[[ $locked == *"boolean false"* ]] ||
	die "the login keyring in $dir/keyrings did not unlock with $dir/password" \
		"put back the password file it was made with, or move $dir aside to start a new, empty keyring"

{
	echo "# . this file to reach make run's keyring from another shell"
	echo "export DBUS_SESSION_BUS_ADDRESS='$bus'"
	if [[ $keyring == throwaway ]]; then echo "export TOKFENCE_STATE_DIR='$TOKFENCE_STATE_DIR'"; fi
} >"$dir/env"
what="private keyring in $dir (kept for the next run)"
if [[ $keyring == throwaway ]]; then what="throwaway keyring in $dir (removed when the daemon stops)"; fi
say "$what"
say "in another shell:  . $dir/env  then  tokfence key set openai"

export DBUS_SESSION_BUS_ADDRESS=$bus
"$bin" daemon "$@" &
daemon_pid=$!
trap 'kill -TERM "$daemon_pid" 2>/dev/null || true' INT TERM HUP
rc=0
while :; do
	wait "$daemon_pid" && rc=0 || rc=$?
	kill -0 "$daemon_pid" 2>/dev/null || break # else a signal woke wait: wait on
done
daemon_pid=
exit "$rc"
