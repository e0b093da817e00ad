package order

import (
	"math"

	"github.com/ordo-shop/ordo/aggregates"
	"github.com/ordo-shop/ordo/events"
)

// Decider returns the order aggregate as an [aggregates.Decider].
func Decider() aggregates.Decider[State, Command] {
	return aggregates.Decider[State, Command]{
		Type:    AggregateType,
		Initial: Initial,
		Decide:  Decide,
		Evolve:  Evolve,
	}
}

// Decide returns the events cmd produces from state s: none when the
// command's effect is already there, or a *[aggregates.DomainError] when
// it is refused.
func Decide(s State, cmd Command) ([]events.Payload, error) {
	switch c := cmd.(type) {
	case Place:
		return place(s, c)
	case MarkStockReserved, RequestPayment, MarkPaid, Reject, Cancel, Ship, Deliver, MarkRefunded:
		if !s.Exists {
			return nil, ErrOrderNotFound.With("%s: order %q", c.commandName(), s.ID)
		}
	default:
		return nil, ErrInvalidCommand.With("unknown command %T", cmd)
	}
	switch c := cmd.(type) {
	case MarkStockReserved:
		return markStockReserved(s, c)
	case RequestPayment:
		return requestPayment(s, c)
	case MarkPaid:
		return markPaid(s, c)
	case Reject:
		return reject(s, c)
	case Cancel:
		return cancel(s, c)
	case Ship:
		return ship(s, c)
	case Deliver:
		return deliver(s, c)
	case MarkRefunded:
		return markRefunded(s, c)
	default:
		return nil, ErrInvalidCommand.With("unknown command %T", cmd)
	}
}

func invalidTransition(s State, cmd Command) error {
	return ErrInvalidTransition.With("cannot %s an order that is %s", cmd.commandName(), s.Status)
}

func place(s State, c Place) ([]events.Payload, error) {
	if s.Exists {
		if c.RequestHash == s.RequestHash {
			return nil, nil
		}
		return nil, ErrIdempotencyKeyReused.With("order %s was placed with key %q and another request", s.ID, s.IdempotencyKey)
	}
	if c.OrderID == "" {
		return nil, ErrInvalidOrder.With("order id is empty")
	}
	if s.ID != "" && c.OrderID != s.ID {
		return nil, ErrInvalidOrder.With("order id %q does not name order %q", c.OrderID, s.ID)
	}
	if !events.ValidID(c.CustomerID) {
		return nil, ErrInvalidOrder.With("customer id %q is not 1-128 characters of letters, digits, '-' and '_'", c.CustomerID)
	}
	if err := aggregates.RefuseText(c.commandName(), placeText(c)); err != nil {
		return nil, err
	}
	if len(c.Lines) == 0 {
		return nil, ErrInvalidOrder.With("an order needs at least one line")
	}
	if len(c.Lines) > MaxLines {
		return nil, ErrTooManyLines.With("%d lines, at most %d", len(c.Lines), MaxLines)
	}
	currency := c.Lines[0].UnitPrice.Currency
	seen := make(map[string]bool, len(c.Lines))
	lines := make([]events.OrderLine, len(c.Lines))
	var total int64
	for i, l := range c.Lines {
		n := i + 1
		if l.SKU == "" {
			return nil, ErrInvalidOrder.With("line %d has no SKU", n)
		}
		if !events.ValidID(l.SKU) {
			return nil, ErrInvalidOrder.With("line %d: SKU %q is not a valid id", n, l.SKU)
		}
		if seen[l.SKU] {
			return nil, ErrDuplicateSKU.With("line %d: %s", n, l.SKU)
		}
		seen[l.SKU] = true
		if l.Qty <= 0 || l.Qty > MaxLineQty {
			return nil, ErrInvalidQuantity.With("line %d (%s): qty %d is not in 1..%d", n, l.SKU, l.Qty, MaxLineQty)
		}
		if !events.ValidCurrency(l.UnitPrice.Currency) {
			return nil, ErrInvalidPrice.With("line %d (%s): currency %q", n, l.SKU, l.UnitPrice.Currency)
		}
		if l.UnitPrice.Amount < 0 {
			return nil, ErrInvalidPrice.With("line %d (%s): unit price %s is negative", n, l.SKU, l.UnitPrice)
		}
		if l.UnitPrice.Currency != currency {
			return nil, ErrMixedCurrency.With("line %d (%s) is in %s, line 1 in %s", n, l.SKU, l.UnitPrice.Currency, currency)
		}
		amount, ok := mul(l.Qty, l.UnitPrice.Amount)
		if !ok {
			return nil, ErrAmountOverflow.With("line %d (%s): %d × %d", n, l.SKU, l.Qty, l.UnitPrice.Amount)
		}
		want := events.Money{Amount: amount, Currency: currency}
		if l.Amount != (events.Money{}) && l.Amount != want {
			return nil, ErrInvalidOrder.With("line %d (%s): amount %s is not %d × %s", n, l.SKU, l.Amount, l.Qty, l.UnitPrice)
		}
		if total, ok = add(total, amount); !ok {
			return nil, ErrAmountOverflow.With("total of %d lines", len(c.Lines))
		}
		l.Amount = want
		lines[i] = l
	}
	return []events.Payload{events.OrderPlaced{
		OrderID:         c.OrderID,
		CustomerID:      c.CustomerID,
		Customer:        c.Customer,
		Lines:           lines,
		Total:           events.Money{Amount: total, Currency: currency},
		ShippingAddress: c.ShippingAddress,
		IdempotencyKey:  c.IdempotencyKey,
		RequestHash:     c.RequestHash,
	}}, nil
}

// placeText checks every text of a Place that goes into order.placed,
// named as in the API's request (the key and hash are headers there).
func placeText(c Place) error {
	if err := c.Customer.CheckText("customer"); err != nil {
		return err
	}
	if err := c.ShippingAddress.CheckText("shipping_address"); err != nil {
		return err
	}
	return events.CheckTexts(
		events.TextField{Name: "idempotency_key", Value: c.IdempotencyKey, Rule: events.KeyText},
		events.TextField{Name: "request_hash", Value: c.RequestHash, Rule: events.TokenText},
	)
}

// mul and add work on non-negative amounts and report overflow.
func mul(a, b int64) (int64, bool) {
	if a != 0 && b > math.MaxInt64/a {
		return 0, false
	}
	return a * b, true
}

func add(a, b int64) (int64, bool) {
	if a > math.MaxInt64-b {
		return 0, false
	}
	return a + b, true
}

func markStockReserved(s State, c MarkStockReserved) ([]events.Payload, error) {
	switch s.Status {
	case StatusPlaced:
		return []events.Payload{events.OrderStockReserved{OrderID: s.ID}}, nil
	case StatusStockReserved:
		return nil, nil
	default:
		return nil, invalidTransition(s, c)
	}
}

func requestPayment(s State, c RequestPayment) ([]events.Payload, error) {
	if c.PaymentID == "" {
		return nil, ErrInvalidCommand.With("request_payment: payment id is empty")
	}
	if err := aggregates.RefuseText(c.commandName(), events.CheckText("checkout_url", c.CheckoutURL, events.URLText)); err != nil {
		return nil, err
	}
	switch s.Status {
	case StatusStockReserved:
	case StatusPaymentPending:
		if c.PaymentID != s.PaymentID {
			return nil, ErrPaymentMismatch.With("order %s waits for payment %s, not %s", s.ID, s.PaymentID, c.PaymentID)
		}
	default:
		return nil, invalidTransition(s, c)
	}
	if c.Amount != s.Total {
		return nil, ErrAmountMismatch.With("payment %s is %s, order %s totals %s", c.PaymentID, c.Amount, s.ID, s.Total)
	}
	if s.Status == StatusPaymentPending {
		return nil, nil
	}
	return []events.Payload{events.OrderPaymentRequested{
		OrderID:     s.ID,
		PaymentID:   c.PaymentID,
		Amount:      c.Amount,
		CheckoutURL: c.CheckoutURL,
	}}, nil
}

func markPaid(s State, c MarkPaid) ([]events.Payload, error) {
	if c.PaymentID == "" {
		return nil, ErrInvalidCommand.With("mark_paid: payment id is empty")
	}
	if s.Status != StatusPaymentPending && s.Status != StatusPaid {
		return nil, invalidTransition(s, c)
	}
	if c.PaymentID != s.PaymentID {
		return nil, ErrPaymentMismatch.With("order %s is paid by payment %s, not %s", s.ID, s.PaymentID, c.PaymentID)
	}
	if c.Amount != s.Total {
		return nil, ErrAmountMismatch.With("payment %s captured %s, order %s totals %s", c.PaymentID, c.Amount, s.ID, s.Total)
	}
	if s.Status == StatusPaid {
		return nil, nil
	}
	return []events.Payload{events.OrderPaid{OrderID: s.ID, PaymentID: c.PaymentID, Amount: c.Amount}}, nil
}

func reject(s State, c Reject) ([]events.Payload, error) {
	if err := aggregates.RefuseText(c.commandName(), events.CheckText("reason", c.Reason, events.NoteText)); err != nil {
		return nil, err
	}
	switch s.Status {
	case StatusPlaced:
		return []events.Payload{events.OrderRejected{
			OrderID:   s.ID,
			Reason:    c.Reason,
			ShortSKUs: cloneStrings(c.ShortSKUs),
		}}, nil
	case StatusRejected:
		return nil, nil
	default:
		return nil, invalidTransition(s, c)
	}
}

func cancel(s State, c Cancel) ([]events.Payload, error) {
	if err := aggregates.RefuseText(c.commandName(), events.CheckTexts(
		events.TextField{Name: "reason", Value: c.Reason, Rule: events.NoteText},
		events.TextField{Name: "cancelled_by", Value: c.By, Rule: events.LineText},
	)); err != nil {
		return nil, err
	}
	switch s.Status {
	case StatusPlaced, StatusStockReserved, StatusPaymentPending, StatusPaid:
		return []events.Payload{events.OrderCancelled{
			OrderID:     s.ID,
			Reason:      c.Reason,
			CancelledBy: c.By,
			WasPaid:     s.Status == StatusPaid,
		}}, nil
	case StatusCancelled, StatusRefunded:
		// Already ended with its money back or never taken: the outcome
		// a cancel asks for is there (decision 025).
		return nil, nil
	case StatusShipped, StatusDelivered:
		return nil, ErrAlreadyShipped.With("order %s is %s", s.ID, s.Status)
	case StatusRejected:
		return nil, ErrNotCancellable.With("order %s is %s", s.ID, s.Status)
	default:
		return nil, invalidTransition(s, c)
	}
}

func ship(s State, c Ship) ([]events.Payload, error) {
	if c.Carrier == "" || c.TrackingNumber == "" {
		return nil, ErrInvalidCommand.With("ship: carrier and tracking number are required")
	}
	if err := aggregates.RefuseText(c.commandName(), events.CheckTexts(
		events.TextField{Name: "carrier", Value: c.Carrier, Rule: events.LineText},
		events.TextField{Name: "tracking_number", Value: c.TrackingNumber, Rule: events.LineText},
	)); err != nil {
		return nil, err
	}
	switch s.Status {
	case StatusPaid:
		return []events.Payload{events.OrderShipped{
			OrderID:        s.ID,
			Carrier:        c.Carrier,
			TrackingNumber: c.TrackingNumber,
		}}, nil
	case StatusShipped, StatusDelivered:
		// The same hand-over again (a retry, perhaps after the delivery)
		// is already so; another carrier or tracking number is refused.
		if c.Carrier == s.Carrier && c.TrackingNumber == s.TrackingNumber {
			return nil, nil
		}
		return nil, ErrAlreadyShipped.With("order %s is %s with %s %s", s.ID, s.Status, s.Carrier, s.TrackingNumber)
	default:
		return nil, ErrNotShippable.With("order %s is %s", s.ID, s.Status)
	}
}

func deliver(s State, c Deliver) ([]events.Payload, error) {
	switch s.Status {
	case StatusShipped:
		return []events.Payload{events.OrderDelivered{OrderID: s.ID}}, nil
	case StatusDelivered:
		return nil, nil
	default:
		return nil, invalidTransition(s, c)
	}
}

func markRefunded(s State, c MarkRefunded) ([]events.Payload, error) {
	if c.PaymentID == "" {
		return nil, ErrInvalidCommand.With("mark_refunded: payment id is empty")
	}
	if s.Status == StatusRefunded || s.Refunded {
		return nil, nil
	}
	switch s.Status {
	case StatusCancelled, StatusStockReserved, StatusPaymentPending, StatusPaid, StatusShipped, StatusDelivered:
	default:
		return nil, invalidTransition(s, c)
	}
	// A payment captured after the order was cancelled, or reported
	// refunded before the order recorded its request, may never have been
	// recorded on the order, so an order without a payment id accepts any.
	if s.PaymentID != "" && c.PaymentID != s.PaymentID {
		return nil, ErrPaymentMismatch.With("order %s was paid by payment %s, not %s", s.ID, s.PaymentID, c.PaymentID)
	}
	if c.Amount != s.Total {
		return nil, ErrAmountMismatch.With("refund of %s, order %s totals %s", c.Amount, s.ID, s.Total)
	}
	if s.Status == StatusShipped || s.Status == StatusDelivered {
		// The goods are with the carrier or the customer: the order keeps
		// its status and customer service gets the case.
		return []events.Payload{events.OrderAttentionRequired{
			OrderID: s.ID, Reason: events.AttentionRefundedAfterShipment, PaymentID: c.PaymentID, Amount: c.Amount,
		}}, nil
	}
	return []events.Payload{events.OrderRefunded{OrderID: s.ID, PaymentID: c.PaymentID, Amount: c.Amount}}, nil
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}
