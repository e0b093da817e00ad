package httpapi

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/command"
)

type skuRequest struct {
	Name   string        `json:"name"`
	Price  *events.Money `json:"price"`
	OnHand *int64        `json:"on_hand"`
}

type skuView struct {
	SKU       string       `json:"sku"`
	Name      string       `json:"name"`
	Price     events.Money `json:"price"`
	OnHand    int64        `json:"on_hand"`
	Reserved  int64        `json:"reserved"`
	Available int64        `json:"available"`
	Version   uint64       `json:"version"`
	Position  string       `json:"position,omitempty"`
}

type skuList struct {
	SKUs []skuView `json:"skus"`
}

func position(stream string, seq uint64) string {
	if seq == 0 {
		return ""
	}
	return fmt.Sprintf("%s:%d", stream, seq)
}

func viewSKU(r command.Result[inventory.State]) skuView {
	st := r.State
	return skuView{
		SKU: st.SKU, Name: st.Name, Price: st.Price,
		OnHand: st.OnHand, Reserved: st.Reserved, Available: st.Available(),
		Version: r.Version, Position: position(r.Stream, r.Seq),
	}
}

func pathID(r *http.Request, name string) (string, error) {
	id := r.PathValue(name)
	if !events.ValidID(id) {
		return "", errorf(http.StatusBadRequest, "invalid_id", "%s %q must be 1-128 characters of letters, digits, '-' and '_'", name, id)
	}
	return id, nil
}

func (s *Server) putSKU(w http.ResponseWriter, r *http.Request, c auth.Claims) error {
	sku, err := pathID(r, "sku")
	if err != nil {
		return err
	}
	var req skuRequest
	if err := s.decode(w, r, &req, false); err != nil {
		return err
	}
	switch {
	case req.Name == "":
		return fieldErrorf("missing_field", "name", "name is required")
	case req.Price == nil:
		return fieldErrorf("missing_field", "price", "price is required ({\"amount\": minor units, \"currency\": \"ISO 4217\"})")
	case req.OnHand == nil:
		return fieldErrorf("missing_field", "on_hand", "on_hand is required")
	}
	if err := checkText("name", req.Name, events.LineText); err != nil {
		return err
	}
	res, err := s.Inventory.Handle(r.Context(), command.Request[inventory.Command]{
		AggregateID: sku,
		Command:     inventory.Define{Name: req.Name, Price: *req.Price, OnHand: *req.OnHand},
		Metadata:    metadata(r, c),
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSKU(res))
	return nil
}

func (s *Server) getSKU(w http.ResponseWriter, r *http.Request, _ auth.Claims) error {
	sku, err := pathID(r, "sku")
	if err != nil {
		return err
	}
	res, err := s.Inventory.State(r.Context(), sku, command.Current)
	if err != nil {
		return err
	}
	if !res.State.Exists {
		return errorf(http.StatusNotFound, "sku_not_found", "no SKU %q", sku)
	}
	writeJSON(w, http.StatusOK, viewSKU(res))
	return nil
}

func (s *Server) listSKUs(w http.ResponseWriter, r *http.Request, _ auth.Claims) error {
	ids, err := s.Catalog.ListIDs(r.Context(), eventlog.TypeInventory)
	if err != nil {
		return err
	}
	sort.Strings(ids)
	out := skuList{SKUs: make([]skuView, 0, len(ids))}
	for _, id := range ids {
		res, err := s.Inventory.State(r.Context(), id, command.Current)
		if err != nil {
			return err
		}
		if res.State.Exists {
			out.SKUs = append(out.SKUs, viewSKU(res))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
