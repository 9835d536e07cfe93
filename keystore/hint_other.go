//go:build !linux && !darwin

package keystore

const platformHint = "tokfence keeps keys only in the OS keychain; make sure this system's keychain service is running and unlocked."
