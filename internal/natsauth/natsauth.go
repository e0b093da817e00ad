// Package natsauth says, in one place, who may do what on the NATS server
// that holds Ordo's log, and how orderd and orderctl prove who they are.
//
// Three users, least privilege first:
//
//   - [Service] is orderd. It appends commits (order.*.*, sku.*.*,
//     payment.*.*), stores dead letters and refused reports (dlq.dead.*,
//     dlq.refused.*) and timer schedules (timer.sched.>), and makes only
//     the JetStream API calls orderd makes at run time: stream info,
//     direct and leader gets, consumers (create, info, next, delete) and
//     their acks, and deleting a handled dead letter. It may not create,
//     update, delete or purge a stream, nor delete a commit.
//   - [Auditor] is orderctl's read commands (history, state, export,
//     verify, reconcile, dlq list/refused, projections status): stream
//     info and lists, direct and leader gets, and consumers of its own
//     (the ordered, ephemeral consumers orderctl reads with). It publishes
//     on no Ordo subject and cannot touch the service's durable consumers.
//   - [Admin] may do everything: provisioning a new log, stream
//     management, and orderctl's commands that write (dlq retry).
//
// The permission sets are [Role.Permissions]; the embedded server of the
// local default enforces them, and deploy/nats/ configures an external
// server with the same sets (a test keeps the two equal).
package natsauth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// Role names one of Ordo's NATS users.
type Role string

// Ordo's NATS users.
const (
	Service Role = "service"
	Auditor Role = "auditor"
	Admin   Role = "admin"
)

// Roles lists every role, least privileged last but one: service,
// auditor, admin.
var Roles = []Role{Service, Auditor, Admin}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("NATS role %q: want service, auditor or admin", s)
}

// The streams and subjects Ordo's users work on, as package streams
// names them (a test checks they agree).
var (
	// logStreams hold the commits: deletes and purges are denied.
	logStreams = []string{"ORDERS", "INVENTORY", "PAYMENTS"}
	// commitSubjects are where commits are appended.
	commitSubjects = []string{"order.*.*", "sku.*.*", "payment.*.*"}
)

// ServiceConsumers are the durable consumers orderd's process managers
// keep (package sagas: "<process manager>-<source>"). The auditor may
// create, read from and delete consumers of its own, but none of these:
// it could otherwise move or steal the checkout's position. A test of
// cmd/orderd checks that a running orderd has no other durable.
var ServiceConsumers = []string{"checkout-orders", "checkout-orders-urgent", "checkout-inventory", "checkout-payments", "checkout-timers", "checkout-redrive"}

const api = "$JS.API."

// Permissions is what one user may publish and subscribe to, in NATS
// subject syntax; a deny wins over an allow.
type Permissions struct {
	PublishAllow, PublishDeny     []string
	SubscribeAllow, SubscribeDeny []string
}

// destructive are the JetStream API calls that create, change or remove
// streams: denied to everyone but the admin, so that widening an allow
// list by mistake cannot grant them.
func destructive() []string {
	d := []string{
		api + "STREAM.CREATE.>",
		api + "STREAM.UPDATE.>",
		api + "STREAM.DELETE.>",
		api + "STREAM.PURGE.>",
		api + "STREAM.RESTORE.>",
	}
	for _, s := range logStreams {
		d = append(d, api+"STREAM.MSG.DELETE."+s)
	}
	return d
}

// Permissions returns the role's permissions; an unknown role may do
// nothing.
func (r Role) Permissions() Permissions {
	switch r {
	case Service:
		pub := slices.Clone(commitSubjects)
		pub = append(pub,
			"dlq.dead.*", "dlq.refused.*", "timer.sched.>",
			api+"INFO",
			api+"STREAM.INFO.*",
			api+"STREAM.MSG.GET.*",
			api+"DIRECT.GET.*",
			api+"DIRECT.GET.*.>",
			api+"CONSUMER.CREATE.*.>",
			api+"CONSUMER.INFO.*.*",
			api+"CONSUMER.MSG.NEXT.*.*",
			api+"CONSUMER.DELETE.*.*",
			// A closing runtime hands its pinned consumers over at once
			// (sagas; decision 024).
			api+"CONSUMER.UNPIN.*.*",
			api+"STREAM.MSG.DELETE.DLQ",
			// Acks of the process managers' durable consumers.
			"$JS.ACK.>",
		)
		return Permissions{
			PublishAllow:   pub,
			PublishDeny:    destructive(),
			SubscribeAllow: []string{"_INBOX.>"},
		}
	case Auditor:
		deny := destructive()
		for _, c := range ServiceConsumers {
			deny = append(deny,
				api+"CONSUMER.CREATE.*."+c,
				api+"CONSUMER.CREATE.*."+c+".>",
				api+"CONSUMER.DELETE.*."+c,
				api+"CONSUMER.MSG.NEXT.*."+c,
			)
		}
		return Permissions{
			PublishAllow: []string{
				api + "INFO",
				api + "STREAM.NAMES",
				api + "STREAM.LIST",
				api + "STREAM.INFO.*",
				api + "STREAM.MSG.GET.*",
				api + "DIRECT.GET.*",
				api + "DIRECT.GET.*.>",
				api + "CONSUMER.CREATE.*.>",
				api + "CONSUMER.INFO.*.*",
				api + "CONSUMER.MSG.NEXT.*.*",
				api + "CONSUMER.DELETE.*.*",
				api + "CONSUMER.NAMES.*",
				api + "CONSUMER.LIST.*",
			},
			PublishDeny:    deny,
			SubscribeAllow: []string{"_INBOX.>"},
		}
	case Admin:
		return Permissions{PublishAllow: []string{">"}, SubscribeAllow: []string{">"}}
	}
	return Permissions{PublishDeny: []string{">"}, SubscribeDeny: []string{">"}}
}

// Server returns the permissions as nats-server takes them.
func (p Permissions) Server() *server.Permissions {
	sp := func(allow, deny []string) *server.SubjectPermission {
		return &server.SubjectPermission{Allow: slices.Clone(allow), Deny: slices.Clone(deny)}
	}
	return &server.Permissions{
		Publish:   sp(p.PublishAllow, p.PublishDeny),
		Subscribe: sp(p.SubscribeAllow, p.SubscribeDeny),
	}
}

// Config returns the permissions in nats-server's configuration syntax,
// as the value of a user's "permissions" key; indent prefixes every line
// after the first.
func (p Permissions) Config(indent string) string {
	var b strings.Builder
	list := func(key string, subjects []string) {
		if len(subjects) == 0 {
			return
		}
		if len(subjects) == 1 {
			fmt.Fprintf(&b, "%s    %s: [%q]\n", indent, key, subjects[0])
			return
		}
		fmt.Fprintf(&b, "%s    %s: [\n", indent, key)
		for _, s := range subjects {
			fmt.Fprintf(&b, "%s      %q\n", indent, s)
		}
		fmt.Fprintf(&b, "%s    ]\n", indent)
	}
	section := func(name string, allow, deny []string) {
		fmt.Fprintf(&b, "%s  %s: {\n", indent, name)
		list("allow", allow)
		list("deny", deny)
		fmt.Fprintf(&b, "%s  }\n", indent)
	}
	b.WriteString("{\n")
	section("publish", p.PublishAllow, p.PublishDeny)
	section("subscribe", p.SubscribeAllow, p.SubscribeDeny)
	b.WriteString(indent + "}")
	return b.String()
}

// ConfigVariable is the name deploy/nats/ gives a role's permissions, a
// variable of nats-server's configuration such as ORDO_SERVICE_PERMISSIONS.
func (r Role) ConfigVariable() string { return "ORDO_" + strings.ToUpper(string(r)) + "_PERMISSIONS" }

// NkeyVariable is the environment variable deploy/nats/ reads a role's
// public nkey from, such as ORDO_NATS_SERVICE_NKEY.
func (r Role) NkeyVariable() string { return "ORDO_NATS_" + strings.ToUpper(string(r)) + "_NKEY" }

// ConfigPermissions returns the permission variables of every role as
// deploy/nats/ defines them, ready to paste into a server configuration.
func ConfigPermissions() string {
	var b strings.Builder
	for _, r := range Roles {
		fmt.Fprintf(&b, "%s: %s\n", r.ConfigVariable(), r.Permissions().Config(""))
	}
	return b.String()
}

// ServerConfig returns nats-server configuration that admits the three
// users of k with their permissions: the permission variables and an
// authorization block naming the public keys.
func (k *Keys) ServerConfig() string {
	var b strings.Builder
	b.WriteString(ConfigPermissions())
	b.WriteString("authorization {\n  users: [\n")
	for _, r := range Roles {
		fmt.Fprintf(&b, "    { nkey: %q, permissions: $%s }\n", k.PublicKey(r), r.ConfigVariable())
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}
