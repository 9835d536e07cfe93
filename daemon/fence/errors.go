package fence

// Error is a fence that could not be built: the cause, and how to fix it.
// The CLI prints it as "tokfence: error: ..." and "tokfence: hint: ...".
type Error struct {
	Cause string
	Fix   string
}

func (e *Error) Error() string { return "cannot build the fence: " + e.Cause }

// Hint returns how to fix the cause.
func (e *Error) Hint() string { return e.Fix }

// hintNoFence is the last resort every fence error offers.
const hintNoFence = "or run the agent unfenced with `tokfence exec --no-fence ...` (or `fence = false` in the config); the session is then marked unfenced"
