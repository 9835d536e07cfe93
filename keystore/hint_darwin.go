package keystore

const platformHint = "tokfence keeps keys only in the macOS Keychain. " +
	"Unlock the login keychain (`security unlock-keychain`) and run tokfence from your own user session, not over a bare ssh login."
