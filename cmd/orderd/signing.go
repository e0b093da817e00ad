package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/local/datadir"
)

// loadCommitSigner returns the signer of every commit this instance
// appends (decision 016): the key ORDO_SIGNING_KEY names, or the data
// dir's own, generated on first start with its public key added to the
// data dir's keyring for orderctl.
func (a *app) loadCommitSigner() (*events.Ed25519Signer, error) {
	var priv ed25519.PrivateKey
	var err error
	path := a.cfg.SigningKey
	if path != "" {
		priv, err = datadir.ReadSigningKey(path)
		if err == nil {
			if perr := datadir.CheckPrivate(path); errors.Is(perr, datadir.ErrNotPrivate) {
				a.log.Warn("the commit-signing key can be read by other users", "err", perr)
			}
		}
	} else {
		path = filepath.Join(a.cfg.DataDir, datadir.SigningKey)
		priv, err = datadir.LocalSigningKey(a.cfg.DataDir)
		if err == nil && a.cfg.NATSURL != "" {
			a.log.Warn("signing commits with a key generated into the data dir: give each deployment's instances ORDO_SIGNING_KEY, "+
				"and the auditors every public key (orderctl keys public)", "path", path,
				"keyring", filepath.Join(a.cfg.DataDir, datadir.SigningKeys))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("commit-signing key (ORDO_SIGNING_KEY): %w", err)
	}
	s, err := events.NewEd25519Signer(priv)
	if err != nil {
		return nil, err
	}
	a.log.Info("signing commits", "key_id", s.KeyID(), "path", path)
	return s, nil
}
