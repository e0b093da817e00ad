package inventory

import (
	"math"
	"unicode/utf8"

	"github.com/ordo-shop/ordo/aggregates"
	"github.com/ordo-shop/ordo/events"
)

// Decider returns the inventory aggregate as an [aggregates.Decider].
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
	case Define:
		return define(s, c)
	case Restock, Reserve, Release, Commit:
		if !s.Exists {
			return nil, ErrSKUNotFound.With("%s: %q", c.commandName(), s.SKU)
		}
	default:
		return nil, ErrInvalidCommand.With("unknown command %T", cmd)
	}
	switch c := cmd.(type) {
	case Restock:
		return restock(s, c)
	case Reserve:
		return reserve(s, c)
	case Release:
		return release(s, c)
	case Commit:
		return commit(s, c)
	default:
		return nil, ErrInvalidCommand.With("unknown command %T", cmd)
	}
}

func define(s State, c Define) ([]events.Payload, error) {
	if s.SKU == "" {
		return nil, ErrInvalidSKU.With("SKU id is empty")
	}
	if c.Name == "" || utf8.RuneCountInString(c.Name) > MaxNameLength {
		return nil, ErrInvalidName.With("%s: name must have 1..%d characters", s.SKU, MaxNameLength)
	}
	if err := aggregates.RefuseText(c.commandName(), events.CheckText("name", c.Name, events.LineText)); err != nil {
		return nil, err
	}
	if !events.ValidCurrency(c.Price.Currency) {
		return nil, ErrInvalidCurrency.With("%s: %q", s.SKU, c.Price.Currency)
	}
	if c.Price.Amount < 0 {
		return nil, ErrInvalidPrice.With("%s: %s is negative", s.SKU, c.Price)
	}
	if c.OnHand < 0 {
		return nil, ErrInvalidQuantity.With("%s: on hand %d is negative", s.SKU, c.OnHand)
	}
	if c.OnHand < s.Reserved {
		return nil, ErrBelowReserved.With("%s: on hand %d, reserved %d", s.SKU, c.OnHand, s.Reserved)
	}
	if s.Exists && s.Reservations.Len() > 0 && c.Price.Currency != s.Price.Currency {
		return nil, ErrCurrencyLocked.With("%s: %s → %s with %d open reservations", s.SKU, s.Price.Currency, c.Price.Currency, s.Reservations.Len())
	}
	var out []events.Payload
	if !s.Exists || c.Name != s.Name || c.Price != s.Price {
		out = append(out, events.InventoryPriced{SKU: s.SKU, Name: c.Name, Price: c.Price})
	}
	if c.OnHand != s.OnHand {
		// Both counts are in 0..MaxInt64, so the difference fits.
		out = append(out, events.InventoryStockAdjusted{SKU: s.SKU, Delta: c.OnHand - s.OnHand, OnHand: c.OnHand})
	}
	return out, nil
}

func restock(s State, c Restock) ([]events.Payload, error) {
	if c.Qty <= 0 {
		return nil, ErrInvalidQuantity.With("%s: restock of %d", s.SKU, c.Qty)
	}
	if s.OnHand > math.MaxInt64-c.Qty {
		return nil, ErrInvalidQuantity.With("%s: restock of %d overflows on hand %d", s.SKU, c.Qty, s.OnHand)
	}
	return []events.Payload{events.InventoryRestocked{SKU: s.SKU, Qty: c.Qty, OnHand: s.OnHand + c.Qty}}, nil
}

func reserve(s State, c Reserve) ([]events.Payload, error) {
	if c.OrderID == "" {
		return nil, ErrInvalidCommand.With("%s: reserve without order id", s.SKU)
	}
	if c.Qty <= 0 {
		return nil, ErrInvalidQuantity.With("%s: reserve %d for order %s", s.SKU, c.Qty, c.OrderID)
	}
	// A retry, or a late duplicate for an order that already shipped or
	// gave its units back: nothing more to hold.
	if s.Reservations.Has(c.OrderID) {
		return nil, nil
	}
	if s.Committed.Has(c.OrderID) {
		return nil, nil
	}
	if s.Released.Has(c.OrderID) {
		return nil, nil
	}
	if avail := s.Available(); avail < c.Qty {
		return []events.Payload{events.InventoryReservationFailed{
			SKU: s.SKU, OrderID: c.OrderID, Requested: c.Qty, Available: avail,
		}}, nil
	}
	return []events.Payload{events.InventoryReserved{SKU: s.SKU, OrderID: c.OrderID, Qty: c.Qty}}, nil
}

func release(s State, c Release) ([]events.Payload, error) {
	if c.OrderID == "" {
		return nil, ErrInvalidCommand.With("%s: release without order id", s.SKU)
	}
	q, held := s.Reservations.Get(c.OrderID)
	if !held {
		return nil, nil
	}
	return []events.Payload{events.InventoryReleased{SKU: s.SKU, OrderID: c.OrderID, Qty: q}}, nil
}

func commit(s State, c Commit) ([]events.Payload, error) {
	if c.OrderID == "" {
		return nil, ErrInvalidCommand.With("%s: commit without order id", s.SKU)
	}
	if s.Committed.Has(c.OrderID) {
		return nil, nil
	}
	q, held := s.Reservations.Get(c.OrderID)
	if !held {
		return nil, ErrNoReservation.With("%s: order %s", s.SKU, c.OrderID)
	}
	return []events.Payload{events.InventoryCommitted{SKU: s.SKU, OrderID: c.OrderID, Qty: q}}, nil
}
