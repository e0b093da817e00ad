package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// Payload is the data of one event. Each payload type names its stable
// event type, such as "order.placed".
type Payload interface {
	EventType() string
}

// Upcaster turns the data of an event written with schema version N into
// the data of version N+1.
type Upcaster func(data json.RawMessage) (json.RawMessage, error)

// Errors returned by a [Registry].
var (
	ErrUnknownEventType = errors.New("unknown event type")
	ErrSchemaVersion    = errors.New("unsupported schema version")
)

type registered struct {
	typ     reflect.Type
	version int
}

type upcastKey struct {
	eventType string
	from      int
}

// Registry maps event type names to payload types and their current schema
// version, and holds the upcasters that bring old versions up to date.
//
// Build a Registry fully before sharing it: registration is not safe for
// concurrent use, encoding and decoding are.
type Registry struct {
	types     map[string]registered
	upcasters map[upcastKey]Upcaster
}

// NewRegistry returns an empty registry. [Standard] returns one holding all
// of Ordo's events.
func NewRegistry() *Registry {
	return &Registry{types: map[string]registered{}, upcasters: map[upcastKey]Upcaster{}}
}

// Register adds payload type T under its event type at the given current
// schema version. T must be a struct type (not a pointer).
func Register[T Payload](r *Registry, schemaVersion int) error {
	var zero T
	t := reflect.TypeOf(zero)
	if t == nil || t.Kind() != reflect.Struct {
		return fmt.Errorf("register %T: payload must be a struct type", zero)
	}
	name := zero.EventType()
	if name == "" {
		return fmt.Errorf("register %T: empty event type", zero)
	}
	if schemaVersion < 1 {
		return fmt.Errorf("register %s: schema version %d", name, schemaVersion)
	}
	if _, dup := r.types[name]; dup {
		return fmt.Errorf("register %s: already registered", name)
	}
	r.types[name] = registered{typ: t, version: schemaVersion}
	return nil
}

// RegisterUpcaster adds the step that turns eventType's data from schema
// version from into version from+1.
func (r *Registry) RegisterUpcaster(eventType string, from int, up Upcaster) error {
	if up == nil || from < 1 {
		return fmt.Errorf("register upcaster %s v%d: invalid", eventType, from)
	}
	k := upcastKey{eventType, from}
	if _, dup := r.upcasters[k]; dup {
		return fmt.Errorf("register upcaster %s v%d: already registered", eventType, from)
	}
	r.upcasters[k] = up
	return nil
}

// Types lists the registered event type names with their current schema
// versions.
func (r *Registry) Types() map[string]int {
	out := make(map[string]int, len(r.types))
	for n, t := range r.types {
		out[n] = t.version
	}
	return out
}

// Encode turns a payload into a stored event at its current schema version.
func (r *Registry) Encode(p Payload) (Event, error) {
	reg, ok := r.types[p.EventType()]
	if !ok {
		return Event{}, fmt.Errorf("%w: %s", ErrUnknownEventType, p.EventType())
	}
	if reflect.TypeOf(p) != reg.typ {
		return Event{}, fmt.Errorf("encode %s: payload is %T, registered as %s", p.EventType(), p, reg.typ)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s: %w", p.EventType(), err)
	}
	return Event{Type: p.EventType(), SchemaVersion: reg.version, Data: data}, nil
}

// Decode turns a stored event into its current payload type, upcasting
// data written with an older schema version one step at a time.
func (r *Registry) Decode(e Event) (Payload, error) {
	reg, ok := r.types[e.Type]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownEventType, e.Type)
	}
	if e.SchemaVersion < 1 || e.SchemaVersion > reg.version {
		return nil, fmt.Errorf("%w: %s v%d (current v%d)", ErrSchemaVersion, e.Type, e.SchemaVersion, reg.version)
	}
	data := e.Data
	for v := e.SchemaVersion; v < reg.version; v++ {
		up, ok := r.upcasters[upcastKey{e.Type, v}]
		if !ok {
			return nil, fmt.Errorf("%w: %s v%d has no upcaster to v%d", ErrSchemaVersion, e.Type, v, v+1)
		}
		var err error
		if data, err = up(data); err != nil {
			return nil, fmt.Errorf("upcast %s v%d: %w", e.Type, v, err)
		}
	}
	ptr := reflect.New(reg.typ)
	if err := json.Unmarshal(data, ptr.Interface()); err != nil {
		return nil, fmt.Errorf("decode %s v%d: %w", e.Type, e.SchemaVersion, err)
	}
	return ptr.Elem().Interface().(Payload), nil
}

// DecodeAll decodes every event of a commit.
func (r *Registry) DecodeAll(c *Commit) ([]Payload, error) {
	out := make([]Payload, 0, len(c.Events))
	for i, e := range c.Events {
		p, err := r.Decode(e)
		if err != nil {
			return nil, fmt.Errorf("%s %s v%d: %w", c.AggregateType, c.AggregateID, c.Version+uint64(i), err)
		}
		out = append(out, p)
	}
	return out, nil
}
