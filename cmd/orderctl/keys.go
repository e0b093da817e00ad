package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/local/datadir"
)

// cmdKeys makes and shows commit-signing keys (decision 016):
//
//	keys new [FILE]    a new private key into FILE, or as the local default's
//	                   next key; its public key into the keyring
//	keys public FILE   the keyring line of a private key
//	keys list          the keys of a keyring
func cmdKeys(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	dataDir := fs.String("data-dir", dataDirDefault(e), "local default's data dir")
	var kf keyFlags
	kf.register(fs, e)
	comment := fs.String("comment", "", "comment stored with a new key's public key (default: when and by what it was made)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("want keys new [FILE], keys public FILE or keys list")
	}
	switch sub, rest := pos[0], pos[1:]; sub {
	case "new":
		if len(rest) > 1 {
			return usagef("want keys new [FILE]")
		}
		c := *comment
		if c == "" {
			c = "made by orderctl keys new " + time.Now().UTC().Format(time.DateOnly)
		}
		if len(rest) == 1 {
			return newKeyFile(e, rest[0], kf.path, c)
		}
		return rotateLocalKey(e, *dataDir, kf.path, c)
	case "public":
		if len(rest) != 1 {
			return usagef("want keys public FILE")
		}
		priv, err := datadir.ReadSigningKey(rest[0])
		if err != nil {
			return err
		}
		pub, err := publicOf(priv, *comment)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, pub)
		return nil
	case "list":
		if len(rest) != 0 {
			return usagef("unexpected argument %q", rest[0])
		}
		keys, source, err := kf.load(&logFlags{dataDir: *dataDir})
		if err != nil {
			return err
		}
		if source == "" {
			return fmt.Errorf("no keyring: give --keys or ORDO_SIGNING_KEYS, or a data dir with %s", datadir.SigningKeys)
		}
		fmt.Fprintf(e.stdout, "%s: %d key(s)\n", source, keys.Len())
		for _, k := range keys.Keys() {
			fmt.Fprintf(e.stdout, "%s  %s\n", k.ID, dash(k.Comment))
		}
		return nil
	default:
		return usagef("unknown keys command %q (want new, public or list)", sub)
	}
}

func publicOf(priv ed25519.PrivateKey, comment string) (events.PublicKey, error) {
	s, err := events.NewEd25519Signer(priv)
	if err != nil {
		return events.PublicKey{}, err
	}
	pub := s.Public()
	pub.Comment = comment
	return pub, nil
}

// newKeyFile writes a new private key to path, which must not exist
// (a key is never overwritten: a rotation makes a new file), adds its
// public key to keyring when one is named and prints its keyring line.
func newKeyFile(e env, path, keyring, comment string) error {
	priv, err := events.GenerateSigningKey()
	if err != nil {
		return err
	}
	pub, err := publicOf(priv, comment)
	if err != nil {
		return err
	}
	data, err := events.MarshalSigningKey(priv)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists: a new key goes into a new file", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return err
	}
	if keyring != "" {
		if _, err := datadir.AddToKeyring(keyring, pub); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "orderctl keys: added %s to %s\n", pub.ID, keyring)
	}
	fmt.Fprintln(e.stdout, pub)
	return nil
}

// rotateLocalKey gives the local default in dataDir a new signing key,
// which orderd uses from its next start. Both public keys end up in the
// data dir's keyring (and in keyring, when one is named) before the new
// key replaces the old one, so every commit either signed stays
// verifiable.
func rotateLocalKey(e env, dataDir, keyring, comment string) error {
	if _, err := os.Stat(dataDir); err != nil {
		return fmt.Errorf("no data dir %s (give FILE to make a key for a deployment)", dataDir)
	}
	local := filepath.Join(dataDir, datadir.SigningKeys)
	rings := []string{local}
	if keyring != "" && keyring != local {
		rings = append(rings, keyring)
	}
	keyPath := filepath.Join(dataDir, datadir.SigningKey)
	old, err := datadir.ReadSigningKey(keyPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		pub, err := publicOf(old, "")
		if err != nil {
			return err
		}
		for _, r := range rings {
			if _, err := datadir.AddToKeyring(r, pub); err != nil {
				return err
			}
		}
	}
	priv, err := events.GenerateSigningKey()
	if err != nil {
		return err
	}
	pub, err := publicOf(priv, comment)
	if err != nil {
		return err
	}
	for _, r := range rings {
		if _, err := datadir.AddToKeyring(r, pub); err != nil {
			return err
		}
	}
	if err := datadir.WriteSigningKey(keyPath, priv); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "orderctl keys: %s is the new signing key of %s from orderd's next start; the old key stays in %s\n", pub.ID, dataDir, local)
	fmt.Fprintln(e.stdout, pub)
	return nil
}
