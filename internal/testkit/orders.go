package testkit

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/streams"
)

// OrderPaths is how many distinct lives [OrderCommands] gives orders.
const OrderPaths = 6

// OrderCommands returns the commands of one order's life, as the API,
// the checkout saga and the warehouse would send them, starting with
// Place: path (taken modulo [OrderPaths]) picks among cancelled by the
// customer, delivered, rejected, paid then cancelled and refunded,
// cancelled while the payment was pending, and left waiting for payment.
func OrderCommands(id, customer string, path int) []order.Command {
	price := events.Money{Amount: 1999, Currency: "CNY"}
	place := order.Place{
		OrderID: id, CustomerID: customer,
		Customer:        events.Customer{Name: "张伟", Email: "zhang.wei@example.com", Phone: "+86 138 0013 8000"},
		Lines:           []events.OrderLine{{SKU: "TEA-250", Qty: 2, UnitPrice: price}, {SKU: "CUP-1", Qty: 1, UnitPrice: events.Money{Amount: 500, Currency: "CNY"}}},
		ShippingAddress: events.Address{Name: "张伟", Line1: "1 Nanjing Rd", City: "上海", PostalCode: "200000", Country: "CN"},
		IdempotencyKey:  "k-" + id, RequestHash: "h-" + id,
	}
	total := events.Money{Amount: 2*1999 + 500, Currency: "CNY"}
	pay := "pay_" + id
	reserve := order.MarkStockReserved{}
	request := order.RequestPayment{PaymentID: pay, Amount: total, CheckoutURL: "http://psp.local/pay/" + pay}
	paid := order.MarkPaid{PaymentID: pay, Amount: total}
	switch path % OrderPaths {
	case 0:
		return []order.Command{place, order.Cancel{Reason: "changed my mind", By: "customer"}}
	case 1:
		return []order.Command{place, reserve, request, paid, order.Ship{Carrier: "SF", TrackingNumber: "SF" + id}, order.Deliver{}}
	case 2:
		return []order.Command{place, order.Reject{Reason: "out of stock", ShortSKUs: []string{"TEA-250"}}}
	case 3:
		return []order.Command{place, reserve, request, paid, order.Cancel{Reason: "too late", By: "customer"}, order.MarkRefunded{PaymentID: pay, Amount: total}}
	case 4:
		return []order.Command{place, reserve, request, order.Cancel{Reason: "payment timeout", By: "payment_timeout"}}
	default:
		return []order.Command{place, reserve, request}
	}
}

// RunOrder sends the commands of [OrderCommands] to h, one commit each,
// with metadata naming an actor and a correlation id.
func RunOrder(ctx context.Context, h *command.Handler[order.State, order.Command], id, customer string, path int) error {
	for i, cmd := range OrderCommands(id, customer, path) {
		_, err := h.Handle(ctx, command.Request[order.Command]{
			AggregateID: id,
			CommandID:   fmt.Sprintf("%s-%d", id, i),
			Command:     cmd,
			Metadata:    events.Metadata{Actor: "test:" + customer, CorrelationID: "corr-" + id, CausationID: fmt.Sprintf("cause-%s-%d", id, i)},
		})
		if err != nil {
			return fmt.Errorf("order %s command %d (%T): %w", id, i, cmd, err)
		}
	}
	return nil
}

// OrderLog opens the event store, with the given partition count, on a
// fresh in-process NATS server ([NATS]) and returns it with a command
// handler for orders.
func OrderLog(tb testing.TB, partitions int) (*streams.Store, *command.Handler[order.State, order.Command]) {
	tb.Helper()
	_, nc := NATS(tb)
	log, err := OpenLog(context.Background(), nc, streams.Config{Partitions: partitions})
	if err != nil {
		tb.Fatal(err)
	}
	reg, err := events.Standard()
	if err != nil {
		tb.Fatal(err)
	}
	h, err := command.NewHandler(order.Decider(), log, reg, command.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return log, h
}

// RunOrders runs the lives ([RunOrder]) of n orders, prefix-0 to
// prefix-(n-1), order i for customer cust-(i%customers) on path i, from
// writers goroutines at once, so that the orders' commits interleave in
// the log. It returns the first error.
func RunOrders(ctx context.Context, h *command.Handler[order.State, order.Command], prefix string, n, customers, writers int) error {
	ids := make(chan int, n)
	for i := range n {
		ids <- i
	}
	close(ids)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for i := range ids {
				if err := RunOrder(ctx, h, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("cust-%d", i%customers), i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
