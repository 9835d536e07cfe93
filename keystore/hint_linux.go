package keystore

const platformHint = "tokfence keeps keys only in the OS keychain (Secret Service over D-Bus). " +
	"Run it in a desktop session with an unlocked keyring, or on a headless box start a private one: " +
	"`make run`, or `dbus-run-session -- sh -c 'printf %s \"$PW\" | gnome-keyring-daemon --unlock --components=secrets; tokfence daemon'`"
