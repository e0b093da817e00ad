package audit

import (
	"context"
	"fmt"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// SignatureIssue is a commit of an aggregate whose signature is missing
// or wrong.
type SignatureIssue struct {
	Version                  uint64
	Problem, Expected, Found string
	Status                   SignatureStatus
}

// AggregateCheck is one aggregate's history with what [CheckAggregate]
// found: its commits in log order, the breaks of its hash chain, each
// commit's signature status (by index of Records) and the commits whose
// signature is missing or wrong.
type AggregateCheck struct {
	Records  []eventlog.Record
	Breaks   []events.ChainBreak
	Statuses []SignatureStatus
	Issues   []SignatureIssue
	// MetaProblem, if set, says that the stream's signing metadata is no
	// sequence (signing is then taken to have begun at 1).
	MetaProblem string
}

// OK reports whether the check found nothing wrong.
func (a AggregateCheck) OK() bool {
	return len(a.Breaks) == 0 && len(a.Issues) == 0 && a.MetaProblem == ""
}

// CheckAggregate reads all of one aggregate's commits and checks its hash
// chain and every commit's signature by the rule [Verify] applies to the
// whole stream ([StreamSigningRule]). An aggregate without commits is an
// error wrapping [ErrNoCommits].
func CheckAggregate(ctx context.Context, log Log, aggType, id string, keys *events.Keyring) (AggregateCheck, error) {
	if keys == nil {
		keys = &events.Keyring{}
	}
	recs, err := log.Load(ctx, aggType, id, 0)
	if err != nil {
		return AggregateCheck{}, err
	}
	if len(recs) == 0 {
		return AggregateCheck{}, fmt.Errorf("%w for %s %s", ErrNoCommits, aggType, id)
	}
	rule, metaProblem, err := StreamSigningRule(ctx, log, aggType)
	if err != nil {
		return AggregateCheck{}, err
	}
	out := AggregateCheck{Records: recs, MetaProblem: metaProblem, Statuses: make([]SignatureStatus, len(recs))}
	commits := make([]*events.Commit, len(recs))
	for i, r := range recs {
		commits[i] = r.Commit
	}
	out.Breaks = events.VerifyChain(commits)
	for i, r := range recs {
		c := r.Commit
		hash, hashErr := c.ComputeHash()
		var sigErr error
		if hashErr == nil {
			sigErr = c.VerifySignature(hash, keys)
		}
		out.Statuses[i] = rule.Judge(c, r.Seq, sigErr, hashErr)
		if problem, expected, found, ok := rule.Problem(out.Statuses[i], c, sigErr); ok {
			out.Issues = append(out.Issues, SignatureIssue{Version: c.Version, Problem: problem, Expected: expected, Found: found, Status: out.Statuses[i]})
		}
	}
	return out, nil
}
