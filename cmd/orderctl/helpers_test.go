package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ordo-shop/ordo/aggregates"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/local/datadir"
)

// localSigner returns a signer with the data dir's commit-signing key,
// generated (and its public key added to the data dir's keyring) if it
// has none: the key orderd signs the local default's commits with.
func localSigner(t testing.TB, dir string) *events.Ed25519Signer {
	t.Helper()
	priv, err := datadir.LocalSigningKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := events.NewEd25519Signer(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newHandler returns a command handler for d's aggregates in the log
// store holds, with the standard event registry.
func newHandler[S, C any](t testing.TB, d aggregates.Decider[S, C], store command.Store) *command.Handler[S, C] {
	t.Helper()
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	h, err := command.NewHandler(d, store, reg, command.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// jsonLines decodes out as JSON Lines of objects.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}
