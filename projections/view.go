package projections

import (
	"strconv"
	"time"
)

// View is a projection's status as operators see it: the query API's
// GET /v1/projections and `orderctl projections status --json` both
// write it. Each read model builds its own (postgres.Status.View,
// search.Status.View).
type View struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// StreamLastSeq is the log's last sequence the lag is measured to.
	StreamLastSeq uint64 `json:"stream_last_seq"`
	// Version, Checkpoint and Lag are the live version's. Lag is nil
	// (JSON null) when the checkpoints could not be read: the lag is
	// then unknown, never 0, and Reason says why.
	Version    int     `json:"version"`
	Checkpoint uint64  `json:"checkpoint"`
	Lag        *uint64 `json:"lag"`
	// Reason, set with state "unavailable", is why the projection's
	// checkpoints could not be read.
	Reason   string        `json:"reason,omitempty"`
	Versions []VersionView `json:"versions"`
	Leases   []LeaseView   `json:"leases"`
	// Quarantine lists the commits set aside (open or acknowledged) in
	// the versions live or being built; OpenQuarantines counts the open
	// ones, which make the instance "degraded".
	Quarantine      []QuarantineView `json:"quarantine"`
	OpenQuarantines int              `json:"open_quarantines"`
}

// Lag returns n as a known lag for [View.Lag].
func Lag(n uint64) *uint64 { return &n }

// LagText is the view's lag as text: the number, or "unknown".
func (v View) LagText() string {
	if v.Lag == nil {
		return "unknown"
	}
	return strconv.FormatUint(*v.Lag, 10)
}

// VersionView is one version of a read model in a [View].
type VersionView struct {
	Version     int       `json:"version"`
	State       string    `json:"state"`
	Checkpoint  uint64    `json:"checkpoint"`
	Lag         uint64    `json:"lag"`
	Checkpoints []uint64  `json:"checkpoints"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// LeaseView is one partition's holder in a [View].
type LeaseView struct {
	Partition int       `json:"partition"`
	Owner     string    `json:"owner"`
	ExpiresAt time.Time `json:"expires_at"`
}

// QuarantineView is one commit a projector set aside, in a [View].
type QuarantineView struct {
	Version int    `json:"version"`
	Seq     uint64 `json:"seq"`
	// Partition's checkpoint passed it; AggregateID is "" when not even
	// the order could be read.
	Partition     int       `json:"partition"`
	AggregateID   string    `json:"aggregate_id"`
	Error         string    `json:"error"`
	Attempts      int       `json:"attempts"`
	State         string    `json:"state"` // open or acknowledged
	QuarantinedAt time.Time `json:"quarantined_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	Note          string    `json:"note,omitempty"`
}
