package gossip

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"

	"github.com/hashicorp/memberlist"
)

// LoadKey reads the gossip encryption key from path: the standard base64
// encoding of 16, 24 or 32 random bytes (AES-128, -192 or -256), surrounded
// by any whitespace. Make one with `head -c 32 /dev/urandom | base64`.
//
// Every error names the file and says what is wrong with it; the key itself
// never appears in an error.
func LoadKey(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip key file: %w", err) // *PathError names the file
	}
	text := bytes.TrimSpace(raw)
	if len(text) == 0 {
		return nil, fmt.Errorf("gossip key file %s: empty; want the base64 of 16, 24 or 32 bytes", path)
	}
	key := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(key, text)
	if err != nil {
		// err is a CorruptInputError: an offset, not the content.
		return nil, fmt.Errorf("gossip key file %s: not valid base64: %v", path, err)
	}
	key = key[:n]
	if err := memberlist.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("gossip key file %s: the key is %d bytes: %v", path, len(key), err)
	}
	return key, nil
}
