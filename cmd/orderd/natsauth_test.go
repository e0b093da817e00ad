package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// adminConn connects to a local default's embedded server as its admin,
// with the key in the data dir, as orderctl's writing commands do.
func (ta *testApp) adminConn() *nats.Conn {
	ta.t.Helper()
	keys, err := natsauth.LoadLocal(ta.cfg.DataDir, false)
	if err != nil {
		ta.t.Fatal(err)
	}
	nc, err := natsembed.Connect(ta.ns, keys.Option(natsauth.Admin))
	if err != nil {
		ta.t.Fatal(err)
	}
	ta.t.Cleanup(nc.Close)
	return nc
}

// refuseLogChanges checks that c may change no stream
// ([testkit.NATSClient.RefusesStreamChanges]) and, with publish, may not
// publish a commit either.
func refuseLogChanges(t *testing.T, c *testkit.NATSClient, publish bool) {
	t.Helper()
	if publish {
		c.Refused(t, "publish a commit", c.PublishOp("order.3.forged", []byte(`{"forged":true}`)))
	}
	c.RefusesStreamChanges(t)
}

// On the local default, NATS admits only the users whose keys orderd
// made in the data dir: a client without credentials is refused, the
// auditor cannot write, orderd's own service user cannot destroy or
// shrink the log, and orderctl works with the data dir's keys.
func TestLocalDefaultNATSNeedsCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("starts orderd")
	}
	ta := mustStart(t, withSagas("auto"))
	ta.putSKU("TEA-250", 1999, 10)
	r := ta.place(ta.alice, "k-auth", orderBody(line("TEA-250", 1)))
	if r.status != 202 {
		t.Fatalf("place: %d %s", r.status, r.raw)
	}
	ta.waitEvent(r.body["order_id"].(string), "order.paid")
	dir := ta.cfg.DataDir
	for _, name := range []string{datadir.NATSServiceSeed, datadir.NATSAuditorSeed, datadir.NATSAdminSeed} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
	}
	url := datadir.ReadURL(dir)
	if nc, err := nats.Connect(url); !natsauth.Refused(err) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("a client without credentials at %s: %v", url, err)
	}
	keys, err := natsauth.LoadLocal(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	refuseLogChanges(t, testkit.ConnectNATS(t, url, keys.Option(natsauth.Auditor)), true)
	refuseLogChanges(t, testkit.ConnectNATS(t, url, keys.Option(natsauth.Service)), false)

	// The auditor's deny list names every durable consumer orderd keeps.
	js, err := jetstream.New(ta.adminConn())
	if err != nil {
		t.Fatal(err)
	}
	var durables []string
	for _, stream := range []string{"ORDERS", "INVENTORY", "PAYMENTS", streams.DLQStream, streams.TimersStream} {
		st, err := js.Stream(t.Context(), stream)
		if err != nil {
			t.Fatal(err)
		}
		for ci := range st.ListConsumers(t.Context()).Info() {
			if ci.Config.Durable != "" {
				durables = append(durables, ci.Config.Durable)
				if !slices.Contains(natsauth.ServiceConsumers, ci.Config.Durable) {
					t.Errorf("durable consumer %s on %s is not in natsauth.ServiceConsumers: the auditor could take it over", ci.Config.Durable, stream)
				}
			}
		}
	}
	if len(durables) == 0 {
		t.Fatal("no durable consumers: the process managers did not start")
	}

	bin := buildOrderctl(t)
	env := []string{"ORDO_DATA_DIR=" + dir}
	if code, out, errOut := runOrderctl(t, bin, env, "verify"); code != exitOK || !strings.Contains(out, "verified") {
		t.Fatalf("orderctl verify with the data dir's keys: exit %d %s%s", code, out, errOut)
	}
	// dlq retry writes: it connects as the admin, and finds nothing to retry.
	if code, _, errOut := runOrderctl(t, bin, env, "dlq", "retry", "999"); code != 1 || !strings.Contains(errOut, "no dead letter 999") {
		t.Fatalf("orderctl dlq retry: exit %d %s", code, errOut)
	}

	// Someone who stole the service user's key, but not orderd's signing
	// key, appends a correctly chained commit: NATS takes it (the service
	// may append), and verify names it.
	victim := r.body["order_id"].(string)
	forger := testkit.ConnectNATS(t, url, keys.Option(natsauth.Service))
	fstore, err := streams.Open(t.Context(), forger.Conn, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	last, ok, err := fstore.Last(t.Context(), eventlog.TypeOrder, victim)
	if err != nil || !ok {
		t.Fatalf("last commit of %s: %v %v", victim, ok, err)
	}
	forged := &events.Commit{
		CommitID: "forged-" + victim, AggregateType: eventlog.TypeOrder, AggregateID: victim, Version: last.Commit.LastVersion() + 1,
		Events:   []events.Event{{Type: "order.shipped", SchemaVersion: 1, Data: json.RawMessage(`{"order_id":"` + victim + `","carrier":"forger","tracking_number":"X1"}`)}},
		Metadata: events.Metadata{Actor: "agent:forger", RecordedAt: last.Commit.Metadata.RecordedAt},
	}
	if err := forged.Seal(last.Commit.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := fstore.Append(t.Context(), forged, last.Seq); err != nil {
		t.Fatalf("the service user's append: %v", err)
	}
	code, out, errOut := runOrderctl(t, bin, env, "verify")
	want := fmt.Sprintf("order %s v%d: unsigned commit in signed history", victim, forged.Version)
	if code != exitCheck || !strings.Contains(out, want) {
		t.Fatalf("orderctl verify after a forged append: exit %d, want %d naming %q\n%s%s", code, exitCheck, want, out, errOut)
	}
}

// orderctl's exit codes.
const (
	exitOK    = 0
	exitCheck = 3
)

// On a three-node cluster with Ordo's users: a client without credentials
// is refused; orderd given the service's ORDO_NATS_CREDS serves the
// checkout once the admin provisioned the log, and before that fails at
// once, saying what NATS refused; credentials the cluster does not know
// fail the start at once too; the auditor cannot publish.
func TestNATSCredentialsOnAThreeNodeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	keys, err := natsauth.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	servers, _ := testkit.Cluster(t, 3, testkit.WithUsers(keys))
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	url := strings.Join(urls, ",")
	if nc, err := nats.Connect(url); !natsauth.Refused(err) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("a client without credentials: %v", err)
	}
	credsDir := t.TempDir()
	serviceCreds, err := keys.WriteSeed(credsDir, natsauth.Service)
	if err != nil {
		t.Fatal(err)
	}
	auditorCreds, err := keys.WriteSeed(credsDir, natsauth.Auditor)
	if err != nil {
		t.Fatal(err)
	}
	cfg := func(creds string) config.Config {
		return testConfig(t, withSagas("auto"), func(c *config.Config) {
			c.NATSURL, c.NATSCreds, c.Replicas = url, creds, 3
			c.StartTimeout = 3 * time.Minute
		})
	}

	// Keys the cluster does not know: refused at once, not waited for.
	stranger, err := natsauth.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	strangerCreds, err := stranger.WriteSeed(t.TempDir(), natsauth.Service)
	if err != nil {
		t.Fatal(err)
	}
	_, err = start(context.Background(), cfg(strangerCreds), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "NATS refused orderd's credentials") || !strings.Contains(err.Error(), strangerCreds) || strings.Contains(err.Error(), "gave up waiting") {
		t.Fatalf("start with unknown credentials: %v", err)
	}
	// Before the log is made, the service may look for it (and finds
	// none); orderd creates no log on an external NATS.
	_, err = start(context.Background(), cfg(serviceCreds), slog.New(slog.DiscardHandler))
	if !errors.Is(err, eventlog.ErrNoLog) || errors.Is(err, errNATSDenied) || !strings.Contains(err.Error(), "orderctl init") {
		t.Fatalf("start as the service on a log nobody made: %v, want ErrNoLog naming orderctl init", err)
	}

	// The admin makes the log (orderctl init); then orderd runs as the
	// service.
	li := testkit.InitLog(t, url, streams.Config{Replicas: 3}, keys.Option(natsauth.Admin))
	serving := cfg(serviceCreds)
	serving.LogID = li.ID
	a, err := start(context.Background(), serving, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ta := newTestApp(t, a)
	ta.putSKU("TEA-250", 1999, 10)
	r := ta.place(ta.alice, "k-cluster", orderBody(line("TEA-250", 1)))
	if r.status != 202 {
		t.Fatalf("place: %d %s", r.status, r.raw)
	}
	ta.waitEvent(r.body["order_id"].(string), "order.paid")

	aud := testkit.ConnectNATS(t, urls[2], keys.Option(natsauth.Auditor))
	refuseLogChanges(t, aud, true)
	bin := buildOrderctl(t)
	// The auditor is given the public key of the key orderd generated
	// into its data dir (no ORDO_SIGNING_KEY here).
	env := []string{"ORDO_NATS_URL=" + url, "ORDO_NATS_CREDS=" + auditorCreds, "ORDO_DATA_DIR=" + t.TempDir(),
		"ORDO_SIGNING_KEYS=" + filepath.Join(ta.cfg.DataDir, datadir.SigningKeys)}
	if code, out, errOut := runOrderctl(t, bin, env, "verify"); code != exitOK || !strings.Contains(out, "verified") || !strings.Contains(out, ", 0 unsigned") {
		t.Fatalf("orderctl verify as the auditor: exit %d %s%s", code, out, errOut)
	}
}
