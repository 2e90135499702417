// Package crypto seals secrets (connector credentials) with an AEAD before they reach the
// database. It is a thin layer over Tink (github.com/tink-crypto/tink-go): no hand-rolled
// cryptography, keys held in a Tink keyset so that they can rotate.
//
// A keyset holds one primary key, which seals, and any number of older keys, which still open
// what they sealed: Tink prefixes every ciphertext with the id of the key that made it. Rotating
// is therefore "add a new key and make it primary"; nothing stored needs rewriting first.
//
// Keysets are read from cleartext Tink JSON files only (see LoadCleartextKeysetFile and
// DevKeyset). The next step for production is a keyset wrapped by a KMS key (tink-go's
// keyset.Read with a KMS AEAD), so that the key material never sits in a file in clear.
package crypto

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// ErrOpen is returned by Sealer.Open when a ciphertext cannot be opened: it was sealed by a key
// the keyset does not hold, with other associated data, or it was altered. The causes are
// deliberately not told apart.
var ErrOpen = errors.New("sealed data cannot be opened: unknown key, other associated data, or altered ciphertext")

// Sealer seals and opens small secrets with the AEAD keys of one Tink keyset. It is safe for
// concurrent use.
type Sealer struct {
	aead  tink.AEAD
	keyID string
}

// NewSealer returns a Sealer over h, whose keys must all be AEAD keys.
func NewSealer(h *keyset.Handle) (*Sealer, error) {
	primary, err := h.Primary()
	if err != nil {
		return nil, fmt.Errorf("keyset: %w", err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("keyset is not an AEAD keyset: %w", err)
	}
	return &Sealer{aead: a, keyID: strconv.FormatUint(uint64(primary.KeyID()), 10)}, nil
}

// Seal encrypts plaintext with the primary key, binding it to associatedData (which is
// authenticated, not encrypted: the same bytes are needed to open it). It returns the
// ciphertext and the id of the key that sealed it, as Tink prints it in the keyset.
func (s *Sealer) Seal(plaintext, associatedData []byte) (ciphertext []byte, keyID string, err error) {
	ct, err := s.aead.Encrypt(plaintext, associatedData)
	if err != nil {
		return nil, "", fmt.Errorf("seal: %w", err)
	}
	return ct, s.keyID, nil
}

// Open decrypts a ciphertext made by Seal with any key of the keyset, primary or not. Every
// failure is ErrOpen.
func (s *Sealer) Open(ciphertext, associatedData []byte) ([]byte, error) {
	pt, err := s.aead.Decrypt(ciphertext, associatedData)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// KeyID is the id of the primary key, the one Seal uses now.
func (s *Sealer) KeyID() string { return s.keyID }

// ConnectorAuthAD is the associated data a connector's credentials are sealed with: its tenant
// and id, so that a ciphertext copied onto another connector (or another tenant's) does not
// open. Tenant ids cannot contain NUL, so the encoding is unambiguous.
func ConnectorAuthAD(tenant, connectorID string) []byte {
	return []byte("interop/connector-auth\x00" + tenant + "\x00" + connectorID)
}
