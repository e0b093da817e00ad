package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/metrics"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/process"
	"github.com/ordo-shop/ordo/sagas"
)

// linkSlack is how much longer than the payment timeout a pay link of the
// in-process simulator works: the link is signed when the intent is
// created, a little before the timeout starts counting, and a shopper
// who clicks after the order was cancelled gets the page's "voided"
// rather than a 403.
const linkSlack = 5 * time.Minute

// payments is orderd's payment side: the payment aggregate's handler, the
// provider (the in-process simulator unless ORDO_PSP_URL is set), the
// webhook secret, and the process managers when the sagas role runs.
type payments struct {
	handler *command.Handler[payment.State, payment.Command]
	client  psp.Client
	sync    *process.PaymentSync
	secret  []byte
	sim     *localSim
	runtime *sagas.Runtime
}

// setupPayments builds the payment side the API needs (the webhook
// endpoint); startSagas starts the process managers once the API's
// address is known.
func (a *app) setupPayments(registry *events.Registry) error {
	p := &payments{}
	a.pay = p
	var err error
	if p.handler, err = command.NewHandler(payment.Decider(), a.store, registry, command.Options{Signer: a.commitSigner}); err != nil {
		return err
	}
	secret := a.cfg.PSPWebhookSecret
	if secret == "" {
		if secret, err = datadir.StoredSecret(a.cfg.DataDir, datadir.PSPWebhookSecret, true); err != nil {
			return err
		}
	}
	p.secret = []byte(secret)
	if a.cfg.PSPURL != "" {
		if p.client, err = psp.NewHTTPClient(a.cfg.PSPURL, "psp", a.cfg.PSPAPIKey, nil); err != nil {
			return err
		}
	} else {
		faults, err := psp.ParseFaults(a.cfg.PSPFaults)
		if err != nil {
			return err
		}
		var key string
		if p.sim, key, err = a.newSimulator(p.secret, faults); err != nil {
			return err
		}
		base, err := a.startSim(p.sim)
		if err != nil {
			return err
		}
		a.cleanup = append(a.cleanup, func() { _ = p.sim.Close() })
		if p.client, err = psp.NewHTTPClient(base, "sim", key, nil); err != nil {
			return err
		}
		a.log.Info("payment provider simulator running", "url", base, "mode", a.cfg.PSPMode, "faults", faults.String())
	}
	// Refused webhooks are recorded in the DLQ stream, also on instances
	// without the sagas role.
	if err := a.store.OpenDLQ(context.Background()); err != nil {
		return err
	}
	p.sync, err = process.NewPaymentSync(p.handler, a.store, p.client.Provider(), a.log.With("component", "payments"))
	return err
}

// startSagas points the in-process simulator's webhooks at this
// instance's API and, with the sagas role, starts the process managers.
func (a *app) startSagas(registry *events.Registry, m *metrics.Metrics) error {
	p := a.pay
	if p.sim != nil {
		p.sim.SetWebhookURL("http://" + dialable(a.addr) + "/v1/psp/webhook")
	}
	if !a.cfg.HasRole("sagas") {
		return nil
	}
	checkout, err := process.NewCheckout(process.CheckoutConfig{
		Orders: a.orders, Inventory: a.stock, Payments: p.handler,
		PSP: p.client, Sync: p.sync, Timers: a.store,
		PaymentTimeout: a.cfg.PaymentTimeout, ReconcileAfter: a.cfg.PSPReconcileAfter,
		Logger: a.log,
	})
	if err != nil {
		return err
	}
	p.runtime, err = sagas.NewRuntime(a.store, registry, sagas.Options{Workers: a.cfg.CheckoutWorkers, Logger: a.log.With("component", "sagas")}, checkout)
	if err != nil {
		return err
	}
	// The runtime lives until close, not until the start context ends.
	if err := p.runtime.Start(context.Background()); err != nil {
		return fmt.Errorf("start process managers: %w", err)
	}
	a.cleanup = append(a.cleanup, func() { _ = p.runtime.Close() })
	rt := p.runtime
	return m.Backlog(func(ctx context.Context) ([]metrics.Lane, error) {
		lanes, err := rt.Backlog(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]metrics.Lane, len(lanes))
		for i, l := range lanes {
			out[i] = metrics.Lane{Stream: l.Stream, Consumer: l.Durable, Pending: l.Pending, Unacked: l.Unacked}
		}
		return out, nil
	})
}

// checkoutBacklog is the checkout's backlog for admission control: the
// commits of the order stream its main lane (the durable consumer
// checkout-orders, shared by every instance) has not delivered or not
// acknowledged. Every instance asks, with or without the sagas role.
func (a *app) checkoutBacklog(ctx context.Context) (int, error) {
	stream, err := a.store.StreamName(eventlog.TypeOrder)
	if err != nil {
		return 0, err
	}
	pending, unacked, err := a.store.ConsumerBacklog(ctx, stream, sagas.DurableName(process.CheckoutName, stream))
	if err != nil {
		return 0, err
	}
	return int(min(pending, math.MaxInt32)) + unacked, nil
}

// startSim starts the in-process simulator. With a listen port of 0 it
// first tries the address it had before (recorded under the data dir),
// then any free port; the address it got is recorded for next time.
func (a *app) startSim(s *localSim) (string, error) {
	listen := a.cfg.PSPListen
	file := filepath.Join(a.cfg.DataDir, datadir.PSPSimAddr)
	if host, port, err := net.SplitHostPort(listen); err == nil && port == "0" {
		if prev, err := os.ReadFile(file); err == nil {
			if ph, pp, err := net.SplitHostPort(strings.TrimSpace(string(prev))); err == nil && ph == host {
				base, err := s.Start(net.JoinHostPort(host, pp))
				if err == nil {
					return base, nil
				}
				a.log.Warn("payment simulator: its previous address is taken; pay pages of earlier orders will not be found",
					"addr", net.JoinHostPort(host, pp), "err", err)
			}
		}
	}
	base, err := s.Start(listen)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("psp sim: its own URL %q: %w", base, err)
	}
	if err := datadir.WriteFile(a.cfg.DataDir, datadir.PSPSimAddr, []byte(u.Host+"\n")); err != nil {
		return "", fmt.Errorf("record the payment simulator's address: %w", err)
	}
	return base, nil
}

// dialable turns a listen address into one a client can dial: an
// unspecified host (0.0.0.0, ::) becomes loopback.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
