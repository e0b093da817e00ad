package main

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// orderctl init makes a deployment's log and prints its id; run again it
// only reports it; on a log that lost a stream it fails the check (exit 3)
// and creates nothing.
func TestInitMakesTheLogOnce(t *testing.T) {
	srv, nc := testkit.NATS(t, func(o *natsembed.Options) { o.Listen = "127.0.0.1:0" })
	env := map[string]string{"ORDO_NATS_URL": srv.ClientURL(), "ORDO_DATA_DIR": t.TempDir(), "ORDO_PARTITIONS": "4"}
	code, out, errOut := orderctl(t, env, "history", "order", "o-1")
	if code != exitError || !strings.Contains(errOut, "orderctl init") {
		t.Fatalf("history before init: exit %d %q, want an error naming orderctl init", code, errOut)
	}
	code, out, errOut = orderctl(t, env, "init", "--replicas", "1")
	if code != exitOK || !strings.Contains(out, "created log") {
		t.Fatalf("init: exit %d %q %q", code, out, errOut)
	}
	s, err := streams.Open(context.Background(), nc, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	id := s.Log().ID
	if !strings.Contains(out, "ORDO_LOG_ID="+id+"\n") || s.Partitions() != 4 {
		t.Fatalf("init printed %q; the log is %+v", out, s.Log())
	}
	code, out, _ = orderctl(t, env, "init")
	if code != exitOK || !strings.Contains(out, "log "+id+" exists") {
		t.Fatalf("init again: exit %d %q", code, out)
	}
	env["ORDO_LOG_ID"] = strings.Repeat("a", 32)
	if code, _, errOut = orderctl(t, env, "init"); code != exitCheck || !strings.Contains(errOut, id) {
		t.Fatalf("init expecting another log: exit %d %q, want 3", code, errOut)
	}
	delete(env, "ORDO_LOG_ID")

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(context.Background(), "TIMERS"); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = orderctl(t, env, "init")
	if code != exitCheck || !strings.Contains(errOut, "TIMERS") || !strings.Contains(errOut, "--recreate-lost") {
		t.Fatalf("init without TIMERS: exit %d %q, want 3 naming TIMERS and --recreate-lost", code, errOut)
	}
	code, out, errOut = orderctl(t, env, "init", "--recreate-lost")
	if code != exitOK || !strings.Contains(out, "added the streams TIMERS") {
		t.Fatalf("init --recreate-lost: exit %d %q %q", code, out, errOut)
	}
	if err := js.DeleteStream(context.Background(), "ORDERS"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init"}, {"init", "--recreate-lost"}} {
		code, _, errOut = orderctl(t, env, args...)
		if code != exitCheck || !strings.Contains(errOut, "ORDERS") || !strings.Contains(errOut, "destroyed") {
			t.Fatalf("%v without ORDERS: exit %d %q, want 3 naming ORDERS", args, code, errOut)
		}
	}
	if _, err := js.Stream(context.Background(), "ORDERS"); err == nil {
		t.Fatal("init recreated ORDERS")
	}
	if code, _, _ := orderctl(t, env, "init", "--partitions", "0"); code != exitUsage {
		t.Fatalf("init --partitions 0: exit %d, want 2", code)
	}
}

// Reading a stopped local default in-process creates nothing: a store
// without a log stays without one.
func TestReadingAnEmptyLocalStoreCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	_, _, stop := testkit.LocalNATS(t, dir, natsauth.Admin, false)
	stop()
	code, _, errOut := orderctl(t, map[string]string{"ORDO_DATA_DIR": dir}, "verify")
	if code != exitError || !strings.Contains(errOut, "no Ordo log") {
		t.Fatalf("verify on an empty store: exit %d %q", code, errOut)
	}
	_, nc, _ := testkit.LocalNATS(t, dir, natsauth.Admin, false)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for n := range js.StreamNames(context.Background()).Name() {
		t.Errorf("verify created stream %s", n)
	}
}
