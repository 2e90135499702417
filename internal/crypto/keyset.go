package crypto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
)

// DevKeysetFile is the name, inside the data directory, of the keyset `interop dev` creates.
const DevKeysetFile = "dev-connector-keyset.json"

// DevKeysetPath is where DevKeyset keeps the development keyset of dataDir.
func DevKeysetPath(dataDir string) string { return filepath.Join(dataDir, DevKeysetFile) }

// NewKeyset returns a keyset of one fresh AES256-GCM key, primary.
func NewKeyset() (*keyset.Handle, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("generate keyset: %w", err)
	}
	return h, nil
}

// Rotate returns h with a fresh AES256-GCM key added and made primary. The older keys stay
// enabled, so what they sealed still opens; new seals use the new key.
func Rotate(h *keyset.Handle) (*keyset.Handle, error) {
	m := keyset.NewManagerFromHandle(h)
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("rotate keyset: add key: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return nil, fmt.Errorf("rotate keyset: set primary: %w", err)
	}
	return m.Handle()
}

// ReadCleartextKeyset reads a cleartext Tink JSON keyset (the format of
// `tinkey create-keyset --out-format json`). Encrypted (KMS-wrapped) keysets are refused with
// an error that says so.
func ReadCleartextKeyset(r io.Reader) (*keyset.Handle, error) {
	raw, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read keyset: %w", err)
	}
	var probe struct {
		EncryptedKeyset *string `json:"encryptedKeyset"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.EncryptedKeyset != nil {
		return nil, errors.New("this is an encrypted (KMS-wrapped) keyset; only cleartext JSON keysets are supported so far")
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(raw)))
	if err != nil {
		// Tink's error says little; ours must not echo key material either.
		return nil, errors.New("not a cleartext Tink JSON keyset")
	}
	return h, nil
}

// WriteCleartextKeyset writes h as a cleartext Tink JSON keyset. The output is key material in
// clear: only for development keysets and tests.
func WriteCleartextKeyset(w io.Writer, h *keyset.Handle) error {
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(w)); err != nil {
		return fmt.Errorf("write keyset: %w", err)
	}
	return nil
}

// LoadCleartextKeysetFile returns a Sealer over the cleartext Tink JSON keyset in path.
func LoadCleartextKeysetFile(path string) (*Sealer, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the keyset file the operator configured
	if err != nil {
		return nil, fmt.Errorf("open keyset: %w", err)
	}
	h, err := ReadCleartextKeyset(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("keyset %s: %w", path, err)
	}
	s, err := NewSealer(h)
	if err != nil {
		return nil, fmt.Errorf("keyset %s: %w", path, err)
	}
	return s, nil
}

// DevKeyset returns a Sealer over the development keyset in dataDir, creating it (mode 0600)
// on first use, so that `interop dev` seals credentials without configuration. It is a
// cleartext keyset: for development only.
func DevKeyset(dataDir string) (*Sealer, error) {
	path := DevKeysetPath(dataDir)
	s, err := LoadCleartextKeysetFile(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return s, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	h, err := NewKeyset()
	if err != nil {
		return nil, err
	}
	// Written whole to a temporary file, then linked into place: link fails if the name exists,
	// so when two processes race on first start one wins and the other reads a complete keyset.
	tmp, err := os.CreateTemp(dataDir, DevKeysetFile+".*.tmp") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("create dev keyset: %w", err)
	}
	// Once linked into place (or on failure) the temporary name is litter: removing it is
	// best effort, a leftover *.tmp file harms nothing.
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := WriteCleartextKeyset(tmp, h); err != nil {
		_ = tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("write dev keyset: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write dev keyset: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return LoadCleartextKeysetFile(path)
	} else if err != nil {
		return nil, fmt.Errorf("create dev keyset: %w", err)
	}
	return NewSealer(h)
}
