package crypto

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tink-crypto/tink-go/v2/keyset"
)

func newSealer(t *testing.T) (*Sealer, *keyset.Handle) {
	t.Helper()
	h, err := NewKeyset()
	require.NoError(t, err)
	s, err := NewSealer(h)
	require.NoError(t, err)
	return s, h
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	s, h := newSealer(t)
	secret := []byte(`{"username":"lab","password":"hunter2-hunter2"}`)
	ad := ConnectorAuthAD("tenant-a", "0b6c3b0e-0000-4000-8000-000000000001")

	ct, keyID, err := s.Seal(secret, ad)
	require.NoError(t, err)
	require.Equal(t, strconv.FormatUint(uint64(h.KeysetInfo().GetPrimaryKeyId()), 10), keyID)
	require.Equal(t, s.KeyID(), keyID)
	require.False(t, bytes.Contains(ct, []byte("hunter2")), "ciphertext holds no plaintext")

	got, err := s.Open(ct, ad)
	require.NoError(t, err)
	require.Equal(t, secret, got)

	// AES-GCM with a random nonce: sealing twice gives two ciphertexts that both open.
	ct2, _, err := s.Seal(secret, ad)
	require.NoError(t, err)
	require.NotEqual(t, ct, ct2)
	got, err = s.Open(ct2, ad)
	require.NoError(t, err)
	require.Equal(t, secret, got)

	// Empty plaintext is still authenticated.
	ct3, _, err := s.Seal(nil, ad)
	require.NoError(t, err)
	got, err = s.Open(ct3, ad)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestOpenRefusesOtherAssociatedData(t *testing.T) {
	t.Parallel()
	s, _ := newSealer(t)
	ad := ConnectorAuthAD("tenant-a", "c1")
	ct, _, err := s.Seal([]byte("secret"), ad)
	require.NoError(t, err)

	for name, other := range map[string][]byte{
		"other connector": ConnectorAuthAD("tenant-a", "c2"),
		"other tenant":    ConnectorAuthAD("tenant-b", "c1"),
		"shifted split":   ConnectorAuthAD("tenant-ac", "1"),
		"none":            nil,
	} {
		_, err := s.Open(ct, other)
		require.ErrorIs(t, err, ErrOpen, name)
	}
}

func TestOpenRefusesTamperedCiphertext(t *testing.T) {
	t.Parallel()
	s, _ := newSealer(t)
	ad := ConnectorAuthAD("t", "c")
	ct, _, err := s.Seal([]byte("secret"), ad)
	require.NoError(t, err)

	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		_, err := s.Open(bad, ad)
		require.ErrorIs(t, err, ErrOpen, "byte %d flipped", i)
	}
	_, err = s.Open(ct[:len(ct)-1], ad)
	require.ErrorIs(t, err, ErrOpen, "truncated")
	_, err = s.Open(append(bytes.Clone(ct), 0), ad)
	require.ErrorIs(t, err, ErrOpen, "extended")
	_, err = s.Open(nil, ad)
	require.ErrorIs(t, err, ErrOpen, "empty")

	// Another keyset's ciphertext does not open either.
	other, _ := newSealer(t)
	foreign, _, err := other.Seal([]byte("secret"), ad)
	require.NoError(t, err)
	_, err = s.Open(foreign, ad)
	require.ErrorIs(t, err, ErrOpen)
}

func TestRotation(t *testing.T) {
	t.Parallel()
	old, h := newSealer(t)
	ad := ConnectorAuthAD("t", "c")
	oldCT, oldID, err := old.Seal([]byte("sealed before rotation"), ad)
	require.NoError(t, err)

	rotated, err := Rotate(h)
	require.NoError(t, err)
	require.Equal(t, 2, rotated.Len())
	s, err := NewSealer(rotated)
	require.NoError(t, err)
	require.NotEqual(t, oldID, s.KeyID(), "the new key is primary")

	got, err := s.Open(oldCT, ad)
	require.NoError(t, err, "ciphertexts of the old key still open")
	require.Equal(t, "sealed before rotation", string(got))

	newCT, newID, err := s.Seal([]byte("sealed after rotation"), ad)
	require.NoError(t, err)
	require.Equal(t, s.KeyID(), newID)
	_, err = old.Open(newCT, ad)
	require.ErrorIs(t, err, ErrOpen, "the old keyset lacks the new key")

	// Rotation survives a write and read of the keyset file.
	var buf bytes.Buffer
	require.NoError(t, WriteCleartextKeyset(&buf, rotated))
	reread, err := ReadCleartextKeyset(&buf)
	require.NoError(t, err)
	s2, err := NewSealer(reread)
	require.NoError(t, err)
	require.Equal(t, newID, s2.KeyID())
	got, err = s2.Open(oldCT, ad)
	require.NoError(t, err)
	require.Equal(t, "sealed before rotation", string(got))
	got, err = s2.Open(newCT, ad)
	require.NoError(t, err)
	require.Equal(t, "sealed after rotation", string(got))
}

func TestLoadCleartextKeysetFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, h := newSealer(t)
	var buf bytes.Buffer
	require.NoError(t, WriteCleartextKeyset(&buf, h))
	path := filepath.Join(dir, "keyset.json")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))

	loaded, err := LoadCleartextKeysetFile(path)
	require.NoError(t, err)
	require.Equal(t, s.KeyID(), loaded.KeyID())
	ct, _, err := s.Seal([]byte("x"), nil)
	require.NoError(t, err)
	got, err := loaded.Open(ct, nil)
	require.NoError(t, err)
	require.Equal(t, "x", string(got))

	_, err = LoadCleartextKeysetFile(filepath.Join(dir, "missing.json"))
	require.ErrorIs(t, err, os.ErrNotExist)

	enc := filepath.Join(dir, "encrypted.json")
	require.NoError(t, os.WriteFile(enc, []byte(`{"encryptedKeyset":"AAAA","keysetInfo":{"primaryKeyId":1}}`), 0o600))
	_, err = LoadCleartextKeysetFile(enc)
	require.ErrorContains(t, err, "encrypted (KMS-wrapped)")

	junk := filepath.Join(dir, "junk.json")
	require.NoError(t, os.WriteFile(junk, []byte(`{"primaryKeyId": 1, "key": []}`), 0o600))
	_, err = LoadCleartextKeysetFile(junk)
	require.ErrorContains(t, err, "not a cleartext Tink JSON keyset")
}

func TestDevKeysetIsCreatedOnceAndKept(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")

	// Several processes starting at once agree on one keyset.
	const n = 8
	sealers := make([]*Sealer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := DevKeyset(dir)
			require.NoError(t, err)
			sealers[i] = s
		})
	}
	wg.Wait()
	for _, s := range sealers[1:] {
		require.Equal(t, sealers[0].KeyID(), s.KeyID())
	}

	fi, err := os.Stat(DevKeysetPath(dir))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files left behind")

	ct, _, err := sealers[0].Seal([]byte("kept"), nil)
	require.NoError(t, err)
	again, err := DevKeyset(dir)
	require.NoError(t, err)
	got, err := again.Open(ct, nil)
	require.NoError(t, err, "a restart reads the same keyset")
	require.Equal(t, "kept", string(got))
}
