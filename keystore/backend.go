package keystore

import (
	"sync"

	"github.com/zalando/go-keyring"
)

// OS is the production Backend: the platform keychain through go-keyring.
type OS struct{}

// Get implements Backend.
func (OS) Get(service, user string) (string, error) { return keyring.Get(service, user) }

// Set implements Backend.
func (OS) Set(service, user, password string) error { return keyring.Set(service, user, password) }

// Delete implements Backend.
func (OS) Delete(service, user string) error { return keyring.Delete(service, user) }

// Memory is an in-process Backend for unit tests. It never touches disk.
// Fail, when set, is returned by every call (to simulate a locked keychain);
// Block, when set, makes every call wait on it (to simulate a hung prompt).
type Memory struct {
	mu    sync.Mutex
	items map[string]string
	Fail  error
	Block chan struct{}
}

// NewMemory returns an empty Memory backend.
func NewMemory() *Memory { return &Memory{items: map[string]string{}} }

func (m *Memory) gate() error {
	m.mu.Lock()
	block, fail := m.Block, m.Fail
	m.mu.Unlock()
	if block != nil {
		<-block
	}
	return fail
}

// SetFail makes every later call fail with err (nil restores service).
func (m *Memory) SetFail(err error) {
	m.mu.Lock()
	m.Fail = err
	m.mu.Unlock()
}

// Get implements Backend.
func (m *Memory) Get(service, user string) (string, error) {
	if err := m.gate(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.items[service+"\x00"+user]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

// Set implements Backend.
func (m *Memory) Set(service, user, password string) error {
	if err := m.gate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items[service+"\x00"+user] = password
	return nil
}

// Delete implements Backend.
func (m *Memory) Delete(service, user string) error {
	if err := m.gate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := service + "\x00" + user
	if _, ok := m.items[k]; !ok {
		return keyring.ErrNotFound
	}
	delete(m.items, k)
	return nil
}
